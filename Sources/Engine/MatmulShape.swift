/// The GEMM a `Backend.matmul` call asks for: C[b] = α·op(A[b])·op(B[b]) + β·C[b] over
/// contiguous row-major operands of rank 2 or 3 (rank 3: a batch; a rank-2 operand is shared
/// by every batch entry). Both backends read their GEMM arguments from here.
public struct MatmulShape: Equatable, Sendable {
    public var batch, m, n, k: Int
    /// Row strides (leading dimensions) of A, B, C.
    public var lda, ldb, ldc: Int
    /// Floats between batch entries (0: the operand is shared).
    public var strideA, strideB, strideC: Int

    public init(_ a: Tensor, transA: Bool, _ b: Tensor, transB: Bool, c: Tensor) {
        precondition(a.isContiguous && b.isContiguous && c.isContiguous)
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        batch = a.rank == 3 ? a.shape[0] : 1
        m = transA ? ac : ar
        k = transA ? ar : ac
        n = transB ? br : bc
        precondition((transB ? bc : br) == k && c.shape[c.rank - 2] == m && c.shape[c.rank - 1] == n, "matmul shapes")
        lda = ac; ldb = bc; ldc = n
        strideA = a.rank == 3 ? ar * ac : 0
        strideB = b.rank == 3 ? br * bc : 0
        strideC = m * n
    }
}
