package status

import "strconv"

func uitoa(v uint64) string { return strconv.FormatUint(v, 10) }
