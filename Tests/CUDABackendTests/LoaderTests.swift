import Foundation
import XCTest
import Kernels
@testable import CUDABackend

/// What works without a GPU: library-missing errors, the kernel cache key and files, the
/// device report text, the launch parameter layout, and NVRTC compiling every kernel source.
final class LoaderTests: XCTestCase {
    func testMissingLibraryNamesItAndTheReason() {
        XCTAssertThrowsError(try DynamicLibrary.open(["libwavemamba-missing.so.1"], directories: ["/nonexistent"])) { e in
            XCTAssertEqual((e as? CUDAError)?.message, "libwavemamba-missing.so.1: not found")
        }
    }

    func testBrokenNVRTCFileIsReportedWithTheFix() throws {
        if (try? NVRTC(environment: [:])) != nil { print("skipped: an NVRTC is installed, so the fallback hides the broken file"); return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wm-nvrtc-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = dir.appendingPathComponent("libnvrtc.so.13")
        try Data("not a library".utf8).write(to: fake)
        XCTAssertThrowsError(try NVRTC(environment: ["WAVEMAMBA_NVRTC_PATH": fake.path])) { e in
            let m = (e as? CUDAError)?.message ?? ""
            XCTAssertTrue(m.contains(fake.path), m)
            XCTAssertTrue(m.contains("WAVEMAMBA_NVRTC_PATH"), m)
        }
        XCTAssertThrowsError(try NVRTC(environment: ["WAVEMAMBA_NVRTC_PATH": dir.appendingPathComponent("none").path])) { e in
            let m = (e as? CUDAError)?.message ?? ""
            XCTAssertTrue(m.hasPrefix("NVRTC (libnvrtc.so.13 or libnvrtc.so.12) could not be loaded"), m)
        }
    }

    func testProbeSaysWhyNoGPUIsUsable() {
        switch CUDADevices.probe() {
        case .available(let version, let devices):
            XCTAssertGreaterThan(version, 0)
            XCTAssertFalse(devices.isEmpty)
        case .unavailable(let reason):
            if (try? DynamicLibrary.open(["libcuda.so.1"])) == nil {
                XCTAssertEqual(reason, "libcuda.so.1: not found (install the NVIDIA driver)")
            } else {
                XCTAssertTrue(reason.contains("CUDA_ERROR") || reason.contains("no CUDA device"), reason)
            }
            XCTAssertThrowsError(try CUDABackend(ordinal: 0)) { e in XCTAssertEqual((e as? CUDAError)?.message, reason) }
        }
    }

    func testDeviceReportText() {
        let none = CUDADevices.report(.unavailable(reason: "libcuda.so.1: not found (install the NVIDIA driver)"), cpuThreads: 16, nvrtc: "NVRTC 13.0 (x)")
        XCTAssertEqual(none, """
            cpu      16 threads
            cuda     unavailable: libcuda.so.1: not found (install the NVIDIA driver)
            nvrtc    NVRTC 13.0 (x)
            """)
        let h100 = CUDADeviceInfo(ordinal: 0, name: "NVIDIA H100 80GB HBM3", totalMemory: 85_045_870_592,
                                  computeCapability: (9, 0), multiprocessors: 132)
        let some = CUDADevices.report(.available(driverVersion: 12040, devices: [h100]), cpuThreads: 16, nvrtc: "n")
        XCTAssertEqual(some.split(separator: "\n")[1],
                       "cuda:0   NVIDIA H100 80GB HBM3, 79.2 GiB, compute capability 9.0 (sm_90), 132 SMs, driver 12.4")
    }

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // Two blocks (56 bytes pads into a second block).
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func testCacheKeyChangesWithSourceArchitectureAndDriver() {
        let k = KernelCache.key(source: "a", architecture: "sm_90", driverVersion: 12040)
        XCTAssertTrue(k.hasSuffix("-sm_90-12040"), k)
        XCTAssertNotEqual(k, KernelCache.key(source: "b", architecture: "sm_90", driverVersion: 12040))
        XCTAssertNotEqual(k, KernelCache.key(source: "a", architecture: "sm_80", driverVersion: 12040))
        XCTAssertNotEqual(k, KernelCache.key(source: "a", architecture: "sm_90", driverVersion: 13000))
        XCTAssertEqual(k, KernelCache.key(source: "a", architecture: "sm_90", driverVersion: 12040))
    }

    func testCacheFolderAndAtomicStore() throws {
        XCTAssertEqual(KernelCache.defaultFolder(environment: ["XDG_CACHE_HOME": "/x/cache"]).path, "/x/cache/wavemamba/cuda")
        XCTAssertEqual(KernelCache.defaultFolder(environment: ["WAVEMAMBA_CUDA_CACHE": "/y", "XDG_CACHE_HOME": "/x"]).path, "/y")
        XCTAssertTrue(KernelCache.defaultFolder(environment: [:]).path.hasSuffix(".cache/wavemamba/cuda"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wm-cache-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = KernelCache(folder: dir.appendingPathComponent("a/b"), prebuilt: dir)
        let key = KernelCache.key(source: "src", architecture: "sm_90", driverVersion: 1)
        XCTAssertNil(cache.load(key: key))
        XCTAssertNil(cache.store([1, 2, 3], key: key))
        XCTAssertEqual(cache.load(key: key), [1, 2, 3])
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("a/b").path)
        XCTAssertEqual(files, ["\(key).cubin"], "no temporary file is left behind")
        try Data([12]).write(to: dir.appendingPathComponent(KernelCache.prebuiltName(source: "src", architecture: "sm_90", nvrtcMajor: 12)))
        try Data([13]).write(to: dir.appendingPathComponent(KernelCache.prebuiltName(source: "src", architecture: "sm_90", nvrtcMajor: 13)))
        XCTAssertEqual(cache.loadPrebuilt(source: "src", architecture: "sm_90"), [[13], [12]], "newest NVRTC first")
        XCTAssertEqual(cache.loadPrebuilt(source: "src", architecture: "sm_80"), [])
        XCTAssertEqual(cache.loadPrebuilt(source: "other", architecture: "sm_90"), [])
    }

    /// scan.cu's ScanArgs / ScanGrads: 17 eight-byte fields + 3 ints (152 bytes), 14 eight-byte fields.
    func testStructLayoutMatchesC() {
        var b = StructBuilder()
        for i in 0..<14 { if i % 2 == 0 { b.pointer(UInt64(i)) } else { b.int64(i) } }
        b.int64(1); b.int64(2); b.int64(3)
        b.int32(4); b.int32(5); b.int32(6)
        XCTAssertEqual(b.finished.count, 152)
        XCTAssertEqual(b.finished[136], 4)
        XCTAssertEqual(b.finished[144], 6)
        var p = StructBuilder()
        p.int32(1); p.pointer(2)
        XCTAssertEqual(p.finished.count, 16, "a pointer after an int is 8-aligned")
        XCTAssertEqual(p.finished[8], 2)
    }

    /// A 12.x driver may reject CUBINs of NVRTC 13 and cannot run cuBLAS 13: the 12 libraries come first there.
    func testLibraryOrderFollowsTheDriver() {
        XCTAssertEqual(NVRTC.libraryNames(driverVersion: 12040), ["libnvrtc.so.12", "libnvrtc.so.13"])
        XCTAssertEqual(NVRTC.libraryNames(driverVersion: 13000), ["libnvrtc.so.13", "libnvrtc.so.12"])
        XCTAssertEqual(NVRTC.libraryNames(driverVersion: 0), NVRTC.libraryNames)
        XCTAssertEqual(CuBLAS.libraryNames(driverVersion: 12080).first, "libcublas.so.12")
        XCTAssertEqual(CuBLAS.libraryNames(driverVersion: 13010).first, "libcublas.so.13")
    }

    func testKernelArgumentSlots() {
        let args = KernelArguments([.int32(-3), .float(1.5), .pointer(0xdead_beef), .bytes([1, 2, 3, 4, 5, 6, 7, 8, 9]), .int64(7)])
        args.withParameters { p in
            XCTAssertEqual(p[0]!.load(as: Int32.self), -3)
            XCTAssertEqual(p[1]!.load(as: Float.self), 1.5)
            XCTAssertEqual(p[2]!.load(as: UInt64.self), 0xdead_beef)
            XCTAssertEqual(p[3]!.load(fromByteOffset: 8, as: UInt8.self), 9)
            XCTAssertEqual(p[4]! - p[3]!, 16, "a struct takes whole 8-byte slots")
            XCTAssertEqual(p[4]!.load(as: Int64.self), 7)
        }
    }

    func testDeviceAllocatorSizeClasses() {
        XCTAssertEqual(CUDACachingAllocator.sizeClass(1), 512)
        XCTAssertEqual(CUDACachingAllocator.sizeClass(513), 1024)
        XCTAssertEqual(CUDACachingAllocator.sizeClass((1 << 20) + 1), (1 << 20) + (1 << 18))
        for n in [1000, 123_456, 5_000_000, 1 << 30] {
            let c = CUDACachingAllocator.sizeClass(n)
            XCTAssertGreaterThanOrEqual(c, n)
            XCTAssertLessThanOrEqual(Double(c), Double(n) * 1.25 + 512)
        }
    }

    func testEveryKernelSourceIsEmbeddedAndSelfContained() {
        for f in KernelFamily.allCases {
            let s = f.source
            XCTAssertGreaterThan(s.count, 200, f.fileName)
            XCTAssertFalse(s.contains("#include"), "\(f.fileName): NVRTC has no headers here")
            XCTAssertTrue(s.contains("extern \"C\" __global__"), f.fileName)
        }
    }

    /// Every kernel family compiles with NVRTC for sm_80 (A100) and sm_90 (H100), when an
    /// NVRTC is found (WAVEMAMBA_NVRTC_PATH, the CUDA toolkit, the loader's path).
    func testEveryKernelCompilesWithNVRTC() throws {
        guard let nvrtc = try? NVRTC() else { print("skipped: NVRTC not found"); return }
        print("compiling with \(nvrtc.description)")
        for arch in ["sm_80", "sm_90"] {
            for f in KernelFamily.allCases {
                let cubin = try nvrtc.compile(source: f.source, name: f.fileName, architecture: arch)
                XCTAssertEqual(Array(cubin.prefix(4)), [0x7f, 0x45, 0x4c, 0x46], "\(f.fileName) for \(arch): CUBIN is an ELF file")
            }
        }
    }

    /// Every scan tile kernel the host may name (each pass, kind and layout `scanForwardKernel` /
    /// `scanBackwardKernel` can pick or an override can force) is an entry point of scan.cu.
    func testEveryScanTileKernelTheHostNamesExists() throws {
        guard let nvrtc = try? NVRTC() else { print("skipped: NVRTC not found"); return }
        let cubin = try nvrtc.compile(source: KernelFamily.scan.source, name: KernelFamily.scan.fileName, architecture: "sm_90")
        let bytes = Data(cubin)
        func has(_ name: String) -> Bool { bytes.range(of: Data((name + "\0").utf8)) != nil }
        let layouts = [(4, 8, 32), (8, 8, 32), (4, 12, 32), (8, 8, 16), (8, 12, 16), (8, 16, 16)]
        for complex in [false, true] {
            let s = SelectiveScanShape(batch: 1, length: 1, channels: 1, dState: 16, isComplex: complex)
            for (items, channels, lanes) in layouts {
                let k = CUDABackend.ScanTileKernel(items: items, channels: channels, lanes: lanes)
                for pass in ["fwd", "bwd"] { XCTAssertTrue(has(k.name(pass, s)), k.name(pass, s)) }
            }
        }
        XCTAssertFalse(has(CUDABackend.ScanTileKernel(items: 8, channels: 12, lanes: 32).name("fwd", SelectiveScanShape(batch: 1, length: 1, channels: 1, dState: 16))),
                       "a 32-lane 8-step kernel of 12 channels is not built (scanItems never picks it)")
    }

    func testNVRTCReportsCompileErrorsWithTheLog() throws {
        guard let nvrtc = try? NVRTC() else { print("skipped: NVRTC not found"); return }
        XCTAssertThrowsError(try nvrtc.compile(source: "extern \"C\" __global__ void k() { undefined_thing(); }", name: "broken.cu",
                                               architecture: "sm_90")) { e in
            let m = (e as? CUDAError)?.message ?? ""
            XCTAssertTrue(m.contains("broken.cu") && m.contains("undefined_thing"), m)
        }
    }
}
