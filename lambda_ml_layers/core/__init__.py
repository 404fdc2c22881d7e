"""Plumbing every phase uses: errors and exit codes, paths under build/, the one command runner,
progress and notices, runtimes and interpreters, the TOML reader, layer trees and zips, the build lock."""
