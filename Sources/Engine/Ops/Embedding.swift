extension Op {
    /// Rows of `table` (V, C) picked by Int32 `indices` of any shape → (indices…, C).
    public static func embedding(_ table: Variable, indices: Tensor, _ tape: Tape) -> Variable {
        precondition(indices.dtype == .int32)
        let b = table.backend
        let y = b.empty(indices.shape + [table.shape[1]])
        b.embedding(table: table.value, indices: indices, out: y)
        let out = output(y, tape, table)
        if out.requiresGrad {
            tape.record("embedding") {
                guard let dy = out.grad else { return }
                table.withGrad { dt, acc in
                    if !acc { b.fill(dt, value: 0) }
                    b.embeddingBackward(dOut: dy, indices: indices, dTable: dt)
                }
            }
        }
        return out
    }
}
