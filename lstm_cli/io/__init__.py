"""The I/O layer: files, JSON and stdin in, validated arrays out; results out, atomically.
Nothing here ever unpickles."""
