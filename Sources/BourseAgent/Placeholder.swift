// BourseAgent: see docs/architecture.md
