package content

import "os"

// benchQuick reports BENCH_QUICK=1: smaller inputs for a fast check.
func benchQuick() bool { return os.Getenv("BENCH_QUICK") == "1" }
