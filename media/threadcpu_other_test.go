//go:build !linux

package media

import "time"

// threadCPU is not measured outside Linux.
func threadCPU() time.Duration { return 0 }
