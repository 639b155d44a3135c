import ArgumentParser

// Entry point; the command tree lives in Bourse.swift.
await Bourse.main()
