package main

// revision is rewritten by the benchmark's one-file-changed rebuild.
const revision = "r0"
