// BourseEstimator: see docs/architecture.md
