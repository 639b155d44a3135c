// BourseGateway: see docs/architecture.md
