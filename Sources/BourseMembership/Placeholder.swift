// BourseMembership: see docs/architecture.md
