import Dispatch
import Foundation

/// A request to stop after the current step, set from another thread (a signal handler, a
/// test, a UI) and polled by the training loop between steps.
public final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    public init() {}

    public var isRequested: Bool { lock.lock(); defer { lock.unlock() }; return count > 0 }

    /// Records a request; returns how many there have been (the second Ctrl-C means "now").
    @discardableResult
    public func request() -> Int { lock.lock(); defer { lock.unlock() }; count += 1; return count }

    func clear() { lock.lock(); count = 0; lock.unlock() }
}

/// SIGINT / SIGTERM → `StopRequest`, through dispatch signal sources. The signals' default
/// action (terminate at once) is replaced by SIG_IGN while the watcher lives, as the dispatch
/// API requires, and put back when it is cancelled. A second signal while the first is being
/// honoured exits at once (status 130): the last checkpoint on disk is intact (atomic writes).
final class SignalWatcher {
    private let signals: [Int32]
    private var sources: [DispatchSourceSignal] = []

    init(_ signals: [Int32] = [SIGINT, SIGTERM], stop: StopRequest, notify: @escaping @Sendable (String) -> Void) {
        self.signals = signals
        for sig in signals {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global(qos: .userInitiated))
            let name = sig == SIGINT ? "interrupt" : sig == SIGTERM ? "termination signal" : "signal \(sig)"
            source.setEventHandler {
                if stop.request() == 1 {
                    notify("\(name): finishing the current step, then saving a checkpoint (send it again to quit without saving)")
                } else {
                    notify("\(name) again: quitting without saving; the last checkpoint on disk is intact")
                    _exit(130)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for s in sources { s.cancel() }
        sources = []
        for sig in signals { signal(sig, SIG_DFL) }
    }

    deinit { cancel() }
}
