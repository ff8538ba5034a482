"""Reading a MADACE project into one normalised model (pure: files in, records out; no other package imports)."""
