// gradkit — the command-line tool. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

exit(runTool(Array(CommandLine.arguments.dropFirst())))
