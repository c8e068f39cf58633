// Data movement: blocked (batched) 2-D transpose, 2-D strided copy (concat / split along the
// last axis), and a general strided N-d copy. All support accumulate (`+=`) so the same
// kernels serve as their own backward (the backward of a copy is the reverse copy, added).

public enum Layout {
    static let block = 32

    /// For each i in 0..<batch: dst_i[c, r] (+)= src_i[r, c], r < rows, c < cols.
    /// src_i = src + i·strideSrc is rows × cols with leading dimension ldSrc (default cols);
    /// dst_i = dst + i·strideDst is cols × rows with leading dimension ldDst (default rows).
    /// Default strides: rows·ldSrc and cols·ldDst. Blocked 32 × 32 for the caches.
    /// Backward: transpose dy back with accumulate: true.
    public static func transpose(src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>,
                                 batch: Int = 1, rows: Int, cols: Int,
                                 ldSrc: Int? = nil, ldDst: Int? = nil, strideSrc: Int? = nil, strideDst: Int? = nil,
                                 accumulate: Bool = false, pool: ThreadPool) {
        let lds = ldSrc ?? cols, ldd = ldDst ?? rows
        let ss = strideSrc ?? rows * lds, sd = strideDst ?? cols * ldd
        let rb = (rows + block - 1) / block, cb = (cols + block - 1) / block
        let tiles = batch * rb * cb
        pool.forRanges(tiles, grain: max(1, elementwiseGrain / (block * block))) { tr in
            for tile in tr {
                let i = tile / (rb * cb), rem = tile % (rb * cb)
                let r0 = (rem / cb) * block, c0 = (rem % cb) * block
                let r1 = min(rows, r0 + block), c1 = min(cols, c0 + block)
                let s = src + i * ss, d = dst + i * sd
                // Write dst rows contiguously; the src column walk stays inside the L1-resident tile.
                for c in c0..<c1 {
                    let drow = d + c * ldd
                    if accumulate {
                        for r in r0..<r1 { drow[r] += s[r * lds + c] }
                    } else {
                        for r in r0..<r1 { drow[r] = s[r * lds + c] }
                    }
                }
            }
        }
    }

    /// dst[r·ldDst + c] (+)= src[r·ldSrc + c] for r < rows, c < cols.
    /// Concatenation along the last axis is one call per part (dst offset by the part's first
    /// column, ldDst = total width); a split is the reverse (src offset, ldSrc = total width).
    public static func copy2D(src: UnsafePointer<Float>, ldSrc: Int, dst: UnsafeMutablePointer<Float>, ldDst: Int,
                              rows: Int, cols: Int, accumulate: Bool = false, pool: ThreadPool) {
        if rows <= 0 || cols <= 0 { return }
        if ldSrc == cols && ldDst == cols {
            Elementwise.copy(src, dst, count: rows * cols, accumulate: accumulate, pool: pool)
            return
        }
        pool.forRanges(rows, grain: max(1, elementwiseGrain / max(1, cols))) { rr in
            for r in rr {
                copyRow(src + r * ldSrc, dst + r * ldDst, cols, accumulate)
            }
        }
    }

    @inline(__always)
    static func copyRow(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ n: Int, _ accumulate: Bool) {
        var c = 0
        if accumulate {
            while c + 16 <= n { store16(load16(d + c) + load16(s + c), d + c); c += 16 }
            while c < n { d[c] += s[c]; c += 1 }
        } else {
            while c + 16 <= n { store16(load16(s + c), d + c); c += 16 }
            while c < n { d[c] = s[c]; c += 1 }
        }
    }

    /// General strided copy: for every multi-index (i_0, …, i_{n−1}) < shape,
    /// dst[Σ i_k·dstStrides[k]] (+)= src[Σ i_k·srcStrides[k]] (element strides, any sign; rank ≥ 1).
    /// The last axis is the inner loop (vectorised when both of its strides are 1). Destination
    /// elements must not overlap each other (no broadcasting into dst).
    public static func copyStrided(src: UnsafePointer<Float>, srcStrides: [Int], dst: UnsafeMutablePointer<Float>,
                                   dstStrides: [Int], shape: [Int], accumulate: Bool = false, pool: ThreadPool) {
        let rank = shape.count
        precondition(rank >= 1 && srcStrides.count == rank && dstStrides.count == rank)
        if shape.contains(where: { $0 <= 0 }) { return }
        let inner = shape[rank - 1], sIn = srcStrides[rank - 1], dIn = dstStrides[rank - 1]
        var outer = 1
        for k in 0..<(rank - 1) { outer *= shape[k] }
        shape.withUnsafeBufferPointer { shp in
        srcStrides.withUnsafeBufferPointer { sst in
        dstStrides.withUnsafeBufferPointer { dst_ in
            pool.forRanges(outer, grain: max(1, elementwiseGrain / max(1, inner))) { rr in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, rank)) { idxBuf in
                    let idx = idxBuf.baseAddress!
                    // Decompose the first outer index, then advance like an odometer.
                    var rem = rr.lowerBound
                    var so = 0, dOff = 0
                    var k = rank - 2
                    while k >= 0 {
                        idx[k] = rem % shp[k]; rem /= shp[k]
                        so += idx[k] * sst[k]; dOff += idx[k] * dst_[k]
                        k -= 1
                    }
                    for _ in rr {
                        let s = src + so, d = dst + dOff
                        if sIn == 1 && dIn == 1 {
                            copyRow(s, d, inner, accumulate)
                        } else if accumulate {
                            for j in 0..<inner { d[j * dIn] += s[j * sIn] }
                        } else {
                            for j in 0..<inner { d[j * dIn] = s[j * sIn] }
                        }
                        var a = rank - 2
                        while a >= 0 {
                            idx[a] += 1; so += sst[a]; dOff += dst_[a]
                            if idx[a] < shp[a] { break }
                            so -= idx[a] * sst[a]; dOff -= idx[a] * dst_[a]; idx[a] = 0
                            a -= 1
                        }
                    }
                }
            }
        }
        }
        }
    }
}
