package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Report is what one run measured. Rates cover the window after everyone had joined, so the
// cost of joining (DTLS handshakes, negotiation) is not in them.
type Report struct {
	Config   Config
	Joined   int     // subscribers that received video
	Failures []error // joins that did not

	JoinLatencies []time.Duration // API call to first video packet, per subscriber

	Window           time.Duration
	PublishedPackets uint64 // received by the node from the publishers, in the window
	Silent           int    // sessions with subscribers whose publisher sent nothing in the window
	ForwardedPackets uint64 // by the node, in the window
	ForwardedBytes   uint64
	ReceivedPackets  uint64   // by the subscribers, in the window
	SubscriberVideo  []uint64 // video packets each subscriber received, whole run
	NodeCPU, OwnCPU  time.Duration
	NodeCPUErr       error
	nodeCPUMeasured  bool
	// UDPDrops counts datagrams this machine's kernel dropped for a full socket buffer in the
	// window (all sockets: node and load generator when they share the machine); -1: unknown.
	UDPDrops int64
}

func (r *Report) fill(before, after sample) {
	r.Window = after.at.Sub(before.at)
	r.PublishedPackets = after.publishedPackets - before.publishedPackets
	for i := range after.published {
		if after.published[i] > 0 && after.published[i] == before.published[i] { // 0: no subscriber joined
			r.Silent++
		}
	}
	r.ForwardedPackets = after.forwardedPackets - before.forwardedPackets
	r.ForwardedBytes = after.forwardedBytes - before.forwardedBytes
	r.ReceivedPackets = after.receivedPackets - before.receivedPackets
	r.OwnCPU = after.ownCPU - before.ownCPU
	r.UDPDrops = -1
	if before.udpDrops >= 0 && after.udpDrops >= 0 {
		r.UDPDrops = after.udpDrops - before.udpDrops
	}
	r.NodeCPUErr = errors.Join(before.nodeCPUErr, after.nodeCPUErr)
	if r.Config.PID > 0 && r.NodeCPUErr == nil {
		r.nodeCPUMeasured = true
		r.NodeCPU = after.nodeCPU - before.nodeCPU
	}
}

// PacketsPerSecond is the node's forwarding rate in the window.
func (r *Report) PacketsPerSecond() float64 { return float64(r.ForwardedPackets) / r.Window.Seconds() }

// LossEstimate compares what subscribers received with what the node says it forwarded in
// the same window. The two are sampled a few milliseconds apart, so small values (either
// sign) are noise, not loss.
func (r *Report) LossEstimate() float64 {
	if r.ForwardedPackets == 0 {
		return 0
	}
	return 1 - float64(r.ReceivedPackets)/float64(r.ForwardedPackets)
}

// NodeCPUPerPacket is the node's CPU time per forwarded packet, zero when not measured.
func (r *Report) NodeCPUPerPacket() time.Duration {
	if !r.nodeCPUMeasured || r.ForwardedPackets == 0 {
		return 0
	}
	return r.NodeCPU / time.Duration(r.ForwardedPackets)
}

// Percentile is the nearest-rank percentile of the join latencies.
func (r *Report) Percentile(p float64) time.Duration {
	if len(r.JoinLatencies) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(r.JoinLatencies))
	i := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) {
	c := r.Config
	camera := "clip (320x240, ~200 kbit/s)"
	if c.Video != nil {
		camera = fmt.Sprintf("synthetic (%.2f Mbit/s, %d fps)", float64(c.Video.Bitrate)/1e6, c.Video.FPS)
	}
	fmt.Fprintf(w, "sessions %d × (1 publisher + %d subscribers), camera %s: %d/%d subscribers joined\n",
		c.Sessions, c.Subscribers, camera, r.Joined, c.Sessions*c.Subscribers)
	const shown = 5
	for i, err := range r.Failures {
		if i == shown {
			fmt.Fprintf(w, "  ... and %d more failures\n", len(r.Failures)-shown)
			break
		}
		fmt.Fprintf(w, "  join failed: %v\n", err)
	}
	fmt.Fprintf(w, "join latency (API call → first video packet, n=%d): p50 %s  p99 %s  max %s\n",
		len(r.JoinLatencies), ms(r.Percentile(50)), ms(r.Percentile(99)), ms(r.Percentile(100)))
	secs := r.Window.Seconds()
	avg := 0.0
	if r.ForwardedPackets > 0 {
		avg = float64(r.ForwardedBytes) / float64(r.ForwardedPackets)
	}
	fmt.Fprintf(w, "window %.1f s: published %d packets = %.0f packets/s; forwarded %d packets = %.0f packets/s, %.2f Mbit/s, %.0f bytes/packet\n",
		secs, r.PublishedPackets, float64(r.PublishedPackets)/secs, r.ForwardedPackets, r.PacketsPerSecond(), float64(r.ForwardedBytes)*8/secs/1e6, avg)
	if r.Silent > 0 {
		fmt.Fprintf(w, "WARNING: %d sessions' publishers sent nothing in the window\n", r.Silent)
	}
	fmt.Fprintf(w, "received by subscribers: %d packets = %.0f packets/s, loss estimate %.2f%%\n",
		r.ReceivedPackets, float64(r.ReceivedPackets)/secs, 100*r.LossEstimate())
	if r.UDPDrops >= 0 {
		fmt.Fprintf(w, "UDP datagrams this machine dropped for full socket buffers (node and generator): %d\n", r.UDPDrops)
	}
	switch {
	case r.nodeCPUMeasured:
		perPacket := float64(r.NodeCPUPerPacket().Nanoseconds()) / 1e3 // µs per packet = CPU-s per million
		fmt.Fprintf(w, "node CPU (pid %d): %.2f s = %.0f%% of a core; %.1f µs per forwarded packet = %.1f CPU-seconds per million forwarded packets\n",
			c.PID, r.NodeCPU.Seconds(), 100*r.NodeCPU.Seconds()/secs, perPacket, perPacket)
	case r.NodeCPUErr != nil:
		fmt.Fprintf(w, "node CPU: not measured: %v\n", r.NodeCPUErr)
	default:
		fmt.Fprintln(w, "node CPU: not measured (give -pid)")
	}
	fmt.Fprintf(w, "load generator CPU: %.2f s = %.0f%% of a core\n", r.OwnCPU.Seconds(), 100*r.OwnCPU.Seconds()/secs)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d.Microseconds())/1e3) }

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux build that
// matters (reading sysconf(_SC_CLK_TCK) would need cgo).
const clockTicks = 100

// processCPU is a process's user plus system CPU time, from /proc/<pid>/stat, to 10 ms.
func processCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: count fields after the last ")".
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// udpDrops is the kernel's count of UDP datagrams dropped for a full receive or send buffer
// (RcvbufErrors + SndbufErrors in /proc/net/snmp), or -1 where that cannot be read.
func udpDrops() int64 {
	raw, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return -1
	}
	var names []string
	for line := range strings.Lines(string(raw)) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		var drops int64
		for i, name := range names {
			if (name == "RcvbufErrors" || name == "SndbufErrors") && i < len(fields) {
				n, err := strconv.ParseInt(fields[i], 10, 64)
				if err != nil {
					return -1
				}
				drops += n
			}
		}
		return drops
	}
	return -1
}

// selfCPU is this process's user plus system CPU time: the load generator shares the machine
// with the node, and its own cost says how much of the machine was left.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
