// gradkit — the command-line tool. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import gradkit

exit(runTool(Array(CommandLine.arguments.dropFirst())))
