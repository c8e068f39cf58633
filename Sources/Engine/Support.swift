// The layers above the Engine see the shared utilities (`ThreadPool`) through it, not through
// Kernels, which only the backends import.
@_exported import Support
