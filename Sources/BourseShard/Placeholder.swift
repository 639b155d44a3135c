// BourseShard: see docs/architecture.md
