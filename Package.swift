// swift-tools-version: 6.0
import PackageDescription

// Release builds target Haswell (AVX2 + FMA): the binary runs on any AVX2 x86-64 machine (Intel Haswell and later,
// AMD Zen and later) while letting the compiler vectorise hot loops 8-wide with FMA. `x86-64-v3` is rejected by
// the bundled clang importer, so the CPU name is used.
let hotLoopFlags: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "haswell"], .when(configuration: .release)),
]

let package = Package(
    name: "adaptir-dist",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "AdaptIRCore", targets: ["AdaptIRCore"]),
        .executable(name: "adaptir-dist", targets: ["adaptir-dist"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3f", providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CRuntime"),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .target(
            name: "AdaptIRCore",
            dependencies: ["CMPI", "CBLAS", "CFFTW", "CHDF5", "CPNG", "CJPEG", "CRuntime"],
            swiftSettings: hotLoopFlags
        ),
        .executableTarget(
            name: "adaptir-dist",
            dependencies: [
                "AdaptIRCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: hotLoopFlags
        ),
        .testTarget(
            name: "AdaptIRCoreTests",
            dependencies: ["AdaptIRCore", "CMPI"],
            exclude: ["Fixtures"],
            swiftSettings: hotLoopFlags
        ),
    ]
)
