/// Why the CUDA backend cannot do something: a missing library, no device, a failed driver,
/// NVRTC or cuBLAS call. The message names the thing, what is wrong and the fix.
public struct CUDAError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
