import Kernels

/// A backend whose tensors live in host memory and whose work runs on a host thread pool (the
/// CPU backend). Host code above the Engine that has no device form (Spectral's FFTW
/// convolution, S4D's recurrent step, the CPU fast generation step, the classifier) runs on
/// its pool; layers ask for this protocol, never for a concrete backend.
public protocol HostBackend: Backend {
    var pool: ThreadPool { get }
}

extension CPUBackend: HostBackend {}

/// The thread pool of a host backend; traps with `what` for a device backend.
public func hostPool(_ backend: any Backend, for what: @autoclosure () -> String) -> ThreadPool {
    guard let host = backend as? any HostBackend else { preconditionFailure("\(what()) runs on a host backend, not \(backend.device)") }
    return host.pool
}
