/// A small, fast, seeded pseudo-random number generator: xoshiro256** (Blackman & Vigna, 2018),
/// its 256-bit state filled from the seed with SplitMix64 as its authors recommend.
///
/// Use it wherever a result must be reproducible from a seed (trace generation, the simulator).
/// The same seed gives the same sequence on every platform and Swift version: the helpers below
/// (`nextUnitDouble`, `nextInt(below:)`, `nextExponential(mean:)`, `pick(_:)`) are defined here
/// rather than relying on the standard library's `random(in:using:)`, whose algorithm is not
/// guaranteed to stay the same across releases.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    public init(seed: UInt64) {
        var sm = SplitMix64(state: seed)
        s0 = sm.next()
        s1 = sm.next()
        s2 = sm.next()
        s3 = sm.next()
        // SplitMix64 never yields four zero words in a row, but keep the invariant explicit.
        if s0 | s1 | s2 | s3 == 0 { s0 = 0x9E37_79B9_7F4A_7C15 }
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    /// Uniform on [0, 1), with 53 random bits.
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform on 0..<bound (bound > 0), without modulo bias (Lemire's multiply-and-reject).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "nextInt(below:) needs a positive bound")
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// Exponentially distributed with the given mean (the gaps of a Poisson process).
    public mutating func nextExponential(mean: Double) -> Double {
        // 1 - u is in (0, 1], so the logarithm is finite.
        -mean * (1 - nextUnitDouble()).naturalLogarithm
    }

    /// One element of a non-empty collection, uniformly.
    public mutating func pick<C: RandomAccessCollection>(_ elements: C) -> C.Element {
        precondition(!elements.isEmpty, "pick(_:) needs a non-empty collection")
        let offset = nextInt(below: elements.count)
        return elements[elements.index(elements.startIndex, offsetBy: offset)]
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 &- k))
    }
}

/// SplitMix64 (Steele, Lea & Flood): used to expand a 64-bit seed into xoshiro's state; also a
/// fine generator on its own for small jobs.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Double {
    /// Natural logarithm computed with plain IEEE arithmetic (no libm), so exponential gaps are
    /// bit-identical on every platform: x = m * 2^e with m in [1, 2), ln m = 2 atanh((m-1)/(m+1)).
    fileprivate var naturalLogarithm: Double {
        guard self > 0 else { return -.infinity }
        let m = significand
        let y = (m - 1) / (m + 1)  // |y| < 1/3
        let y2 = y * y
        var term = y
        var sum = 0.0
        var k = 1.0
        while true {
            let add = term / k
            if add == 0 || abs(add) <= 1e-18 * abs(sum) { break }
            sum += add
            term *= y2
            k += 2
        }
        return 2 * sum + Double(exponent) * 0.693_147_180_559_945_309_417_232_121_458
    }
}
