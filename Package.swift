// swift-tools-version:6.2
// 6.2 matters: from 6.2 SwiftPM accepts unsafeFlags in a package used as a
// versioned dependency, which the C target's -O3 and the trait's flags need.
import PackageDescription

let nativeOpenMP: Set<String> = ["NativeOpenMP"]
let mpi: Set<String> = ["MPI"]

let package = Package(
    name: "GradKit",
    products: [
        .library(name: "GradKit", targets: ["GradKit"]),
        .executable(name: "gradkit", targets: ["gradkit-main"]),
        .executable(name: "gradkit-bench", targets: ["gradkit-bench"]),
    ],
    traits: [
        .trait(
            name: "NativeOpenMP",
            description: "Compile the C kernels with -march=native and OpenMP threads (needs Debian's libomp-dev)."
        ),
        .trait(
            name: "MPI",
            description: "Data-parallel training across processes on Open MPI (needs Debian's libopenmpi-dev; run under mpirun)."
        ),
        .default(enabledTraits: []),
    ],
    targets: [
        // Public products.
        .target(
            name: "GradKit",
            dependencies: ["CKernels", .target(name: "CMPI", condition: .when(traits: mpi))],
            path: "Sources/GradKit",
            swiftSettings: [
                // Dynamic exclusivity checks on class properties cost ~17% of an
                // autograd op (measured with callgrind); debug builds keep them.
                .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
            ]
        ),
        // The command line is a library target, so the tests and the fuzz harness
        // link its parser; the executable is its main.swift.
        .executableTarget(
            name: "gradkit-main",
            dependencies: ["gradkit"],
            path: "Sources/gradkit-main"
        ),
        .executableTarget(
            name: "gradkit-bench",
            dependencies: ["GradKit"],
            path: "Benchmarks",
            exclude: ["torch_bench.py", "compare.sh"],
            
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        // libFuzzer targets for the parsers (built with -DFUZZING by Fuzz/run.sh),
        // and a replayer of their inputs in a normal build.
        .executableTarget(
            name: "GradKitFuzz",
            dependencies: ["GradKit", "gradkit"],
            path: "Sources/GradKitFuzz"
        ),

        // Data-parallel checks, run under mpirun with 2 and 3 ranks (build with --traits MPI).
        .executableTarget(
            name: "gradkit-mpi-check",
            dependencies: ["GradKit"],
            path: "Tests/DistributedChecks"
        ),

        // Implementation details.
        .target(
            name: "gradkit",
            dependencies: ["GradKit", "GradKitLab"],
            path: "Sources/gradkit"
        ),
        .target(
            name: "GradKitLab",
            dependencies: ["GradKit"],
            path: "Sources/GradKitLab"
        ),
        .systemLibrary(
            name: "CMPI",
            path: "Sources/CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        .target(
            name: "CKernels",
            path: "CKernels",
            cSettings: [
                .unsafeFlags(["-O3", "-fno-math-errno", "-Wall", "-Wextra"]),
                .unsafeFlags(["-march=native", "-fopenmp"], .when(traits: nativeOpenMP)),
                .define("CK_NATIVE_BUILD", .when(traits: nativeOpenMP)),
            ],
            linkerSettings: [
                .linkedLibrary("m", .when(platforms: [.linux])),
                // Debian's libomp-dev installs libomp5.so on the default path; -lomp is not found.
                .linkedLibrary("omp5", .when(traits: nativeOpenMP))
            ]
        ),

        // Tests.
        .testTarget(
            name: "GradKitTests",
            dependencies: ["GradKit", "GradKitLab", "CKernels", "gradkit", "GradKitFuzz"],
            path: "Tests/GradKitTests"
        ),
    ]
)
