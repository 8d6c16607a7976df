// swift-tools-version: 6.0
import PackageDescription

// The preload shim itself (cshim/src) is built by cshim/Makefile with the
// system C compiler, so that it NEEDs only libc and libunwind; SwiftPM would
// link the Swift runtime into it. SwiftPM builds everything else.
let package = Package(
  name: "memsift",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "memsift", targets: ["memsift"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
  ],
  targets: [
    // C interfaces
    .target(
      name: "CMemsiftFormat",
      path: "cshim/include",
      publicHeadersPath: "."
    ),
    .target(
      name: "CMemsiftRing",
      dependencies: ["CMemsiftFormat"],
      path: "cshim/ring",

    ),
    .target(name: "CMemsiftSys"),
    .systemLibrary(
      name: "CLibdw",
      pkgConfig: "libdw",
      providers: [.apt(["libdw-dev"])]
    ),
    .systemLibrary(
      name: "CZstd",
      pkgConfig: "libzstd",
      providers: [.apt(["libzstd-dev"])]
    ),
    .systemLibrary(
      name: "CZlib",
      pkgConfig: "zlib",
      providers: [.apt(["zlib1g-dev"])]
    ),

    // Core libraries
    .target(name: "MemsiftFormat", dependencies: ["CMemsiftFormat", "CZstd"]),
    .target(name: "MemsiftAnalysis", dependencies: ["MemsiftFormat", "CMemsiftFormat"]),
    .target(name: "MemsiftSymbols", dependencies: ["MemsiftFormat", "CLibdw"]),
    .target(name: "MemsiftReport", dependencies: ["MemsiftAnalysis", "MemsiftFormat", "MemsiftSymbols", "CZlib"]),
    .target(
      name: "MemsiftCollector",
      dependencies: ["MemsiftFormat", "MemsiftAnalysis", "CMemsiftRing", "CMemsiftSys", "CZstd"]
    ),

    // The command-line tool
    .executableTarget(
      name: "memsift",
      dependencies: [
        "MemsiftFormat", "MemsiftAnalysis", "MemsiftReport", "MemsiftCollector",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),

    // The fuzz target of the trace reader (tools/fuzz/README.md): under
    // -sanitize=fuzzer -DMEMSIFT_FUZZ libFuzzer drives it; in the normal
    // build it runs a corpus once.
    .executableTarget(
      name: "memsift-fuzz",
      dependencies: ["MemsiftFormat", "MemsiftAnalysis", "MemsiftReport", "MemsiftSymbols", "CMemsiftFormat", "CZstd"]
    ),

    // Tests
    .target(name: "_MemsiftTestSupport", dependencies: ["CMemsiftFormat"]),
    .testTarget(
      name: "MemsiftFormatTests",
      dependencies: ["MemsiftFormat", "CMemsiftFormat", "CZstd", "_MemsiftTestSupport"]
    ),
    .testTarget(
      name: "MemsiftAnalysisTests",
      dependencies: ["MemsiftAnalysis", "MemsiftFormat", "_MemsiftTestSupport"]
    ),
    .testTarget(
      name: "MemsiftReportTests",
      dependencies: ["MemsiftReport", "MemsiftAnalysis", "MemsiftSymbols", "_MemsiftTestSupport"],
      exclude: ["Golden"]
    ),
    .testTarget(
      name: "MemsiftSymbolsTests",
      dependencies: ["MemsiftSymbols", "MemsiftFormat"],
      exclude: ["Fixtures"]
    ),
    .testTarget(
      name: "MemsiftCollectorTests",
      dependencies: ["MemsiftCollector", "MemsiftAnalysis", "MemsiftFormat", "_MemsiftTestSupport"]
    ),
    .testTarget(name: "MemsiftEndToEndTests", dependencies: ["MemsiftFormat"]),
  ],
  swiftLanguageModes: [.v5]
)
