// The kernels take a `ThreadPool`; whoever imports Kernels sees it too.
@_exported import Support
