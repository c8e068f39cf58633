extension Op {
    /// The same elements with another shape (a view; the gradient is copied back).
    public static func reshape(_ x: Variable, _ shape: [Int], _ tape: Tape) -> Variable {
        let xv = x.value.contiguous()
        let out = output(xv.reshaped(shape), tape, x)
        if out.requiresGrad {
            tape.record("reshape") {
                guard let dy = out.grad else { return }
                x.withGrad { dx, acc in x.backend.scale(dy.reshaped(dx.shape), by: 1, out: dx, accumulate: acc) }
            }
        }
        return out
    }

    /// Splits the last dimension into consecutive column blocks of `sizes`. The parts are
    /// strided views of x (no copy); kernels that take a row stride read them in place.
    public static func split(_ x: Variable, _ sizes: [Int], _ tape: Tape) -> [Variable] {
        let xv = x.value.reshaped([x.value.rows, x.value.columns])
        precondition(sizes.reduce(0, +) == xv.columns, "split \(sizes) of \(xv.columns) columns")
        var start = 0
        var ranges: [Range<Int>] = []
        for s in sizes { ranges.append(start..<(start + s)); start += s }
        let parts = ranges.map { Variable(xv.columns($0), requiresGrad: tape.isRecording && x.requiresGrad) }
        if tape.isRecording && x.requiresGrad {
            tape.record("split") {
                // One withGrad for all parts, so a fresh buffer is written once per column block.
                x.withGrad { dx, acc in
                    let d2 = dx.reshaped([xv.rows, xv.columns])
                    for (p, r) in zip(parts, ranges) {
                        if let g = p.grad { x.backend.copy2D(from: g, to: d2.columns(r), accumulate: acc) }
                        else if !acc { x.backend.fill(d2.columns(r), value: 0) }
                    }
                }
            }
        }
        return parts
    }

    /// Concatenates along the last dimension (inputs have equal rows).
    public static func concat(_ xs: [Variable], _ tape: Tape) -> Variable {
        let rows = xs[0].value.rows
        let width = xs.reduce(0) { $0 + $1.value.columns }
        let b = xs[0].backend
        let y = b.empty([rows, width])
        var start = 0
        var ranges: [Range<Int>] = []
        for x in xs {
            let r = start..<(start + x.value.columns)
            b.copy2D(from: x.value.rank == 2 ? x.value : x.value.reshaped([rows, x.value.columns]), to: y.columns(r), accumulate: false)
            ranges.append(r)
            start = r.upperBound
        }
        let out = Variable(y, requiresGrad: tape.isRecording && xs.contains { $0.requiresGrad })
        if out.requiresGrad {
            tape.record("concat") {
                guard let dy = out.grad else { return }
                for (x, r) in zip(xs, ranges) where x.requiresGrad {
                    x.withGrad { dx, acc in b.copy2D(from: dy.columns(r), to: dx.reshaped([rows, r.count]), accumulate: acc) }
                }
            }
        }
        return out
    }

    /// Batched transpose (batch, rows, cols) → (batch, cols, rows).
    public static func transpose(_ x: Variable, batch: Int, rows: Int, cols: Int, _ tape: Tape) -> Variable {
        let xv = x.value.contiguous()
        let y = x.backend.empty([batch, cols, rows])
        x.backend.transpose(xv, batch: batch, rows: rows, cols: cols, out: y, accumulate: false)
        let out = output(y, tape, x)
        if out.requiresGrad {
            tape.record("transpose") {
                guard let dy = out.grad else { return }
                x.withGrad { dx, acc in x.backend.transpose(dy, batch: batch, rows: cols, cols: rows, out: dx, accumulate: acc) }
            }
        }
        return out
    }

    /// Shifts each sequence of (batch, L, C) right by `steps` time steps, zero-filling the
    /// start: y[b, t] = x[b, t − steps]. SaShiMi's UpPool uses it to stay causal.
    public static func shiftRight(_ x: Variable, batch: Int, steps: Int, _ tape: Tape) -> Variable {
        let xv = x.value.contiguous()
        let rowsPerSeq = xv.rows / batch, c = xv.columns
        let width = rowsPerSeq * c, shift = steps * c
        let b = x.backend
        let y = b.empty(xv.shape)
        let y2 = y.reshaped([batch, width]), x2 = xv.reshaped([batch, width])
        b.fill(y2.columns(0..<min(shift, width)), value: 0)
        if shift < width { b.copy2D(from: x2.columns(0..<(width - shift)), to: y2.columns(shift..<width), accumulate: false) }
        let out = output(y, tape, x)
        if out.requiresGrad {
            tape.record("shiftRight") {
                guard let dy = out.grad else { return }
                x.withGrad { dx, acc in
                    let dx2 = dx.reshaped([batch, width]), dy2 = dy.reshaped([batch, width])
                    if shift < width { b.copy2D(from: dy2.columns(shift..<width), to: dx2.columns(0..<(width - shift)), accumulate: acc) }
                    if !acc { b.fill(dx2.columns(max(0, width - shift)..<width), value: 0) }
                }
            }
        }
        return out
    }
}
