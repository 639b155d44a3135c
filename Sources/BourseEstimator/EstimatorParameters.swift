/// Hyper-parameters of `ThroughputEstimator` (see docs/estimator.md for the model).
///
/// The estimator models z = log(steps per second) = log(samples/s / (batch * workers)) of a cell
/// (job type j, configuration c) as a Gaussian process whose covariance between two cells is a sum
/// of products of a job-type kernel and a configuration kernel, plus a collaborative-filtering
/// term built from a low-rank factorisation fitted on the observed cells:
///
///     k((j,c),(j',c')) = jobBias * R + jobOwnBias * I_j + configBias * C + interaction * R*C
///                      + gpuInteraction * R*G + scaleInteraction * R*S + jobOwnInteraction * I_j*C
///                      + configOwnBias * I_c + collaborative * (R + collaborativeJobOwn * I_j) * V
///                      + cellVariance * I_j*I_c
///
/// R: same model family, squared-exponential in log2(batch size) (`batchLengthScale`); I_j: same
/// job type; C: squared-exponential in log2(workers) (`workerLengthScale`), times `gpuCorrelation`
/// across GPU types and `placementCorrelation` across placements; G: same GPU type; S: same worker
/// count and placement; I_c: same configuration; V: inner product of the configurations' factors
/// of a rank-`rank` factorisation (ALS, L2 `regularization`), normalised to unit mean diagonal.
///
/// The defaults were chosen by random search on the median error of held-out cells at 30 %
/// observed (seeds 100-107 of `EstimatorEvaluation`), then checked on other seeds and fractions.
public struct EstimatorParameters: Sendable, Hashable {
    public var batchLengthScale = 2.81
    public var workerLengthScale = 4.45
    public var gpuCorrelation = 0.32
    public var placementCorrelation = 0.64
    public var jobBias = 13.9
    public var jobOwnBias = 0.0093
    public var configBias = 19.1
    public var interaction = 4.5
    public var gpuInteraction = 0.35
    public var scaleInteraction = 0.0086
    public var jobOwnInteraction = 0.12
    public var configOwnBias = 0.068
    public var collaborative = 0.064
    public var collaborativeJobOwn = 0.19
    /// Variance of a cell's own deviation from everything the kernel explains (log units).
    public var cellVariance = 0.051
    /// Relative standard deviation of one observation of weight 1 (its variance is divided by the
    /// weight, so feedback from long runs pins the estimate).
    public var measurementNoise = 0.05
    /// Rank of the collaborative-filtering factorisation (0 turns the term off).
    public var rank = 2
    /// L2 regularisation of the factorisation (biases and factors).
    public var regularization = 0.75
    public var alsIterations = 30
    /// `fit()` refits the factorisation when the number of observed cells grew by more than this
    /// fraction since the last factorisation; smaller changes only update the Gaussian process.
    public var refactorGrowth = 0.25

    public init() {}

    public static let `default` = EstimatorParameters()
}
