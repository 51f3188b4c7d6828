// gradkit — the command-line tool. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import gradkit

exit(runTool(argc: CommandLine.argc, argv: CommandLine.unsafeArgv))
