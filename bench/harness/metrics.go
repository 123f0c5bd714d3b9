package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// sample is one Prometheus series: its name, labels and value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// snapshot is every series of one scrape.
type snapshot []sample

// sum adds the values of the series called name whose labels include want.
func (s snapshot) sum(name string, want map[string]string) float64 {
	total := 0.0
	for _, x := range s {
		if x.name != name {
			continue
		}
		ok := true
		for k, v := range want {
			if x.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			total += x.value
		}
	}
	return total
}

// by returns name's values summed by the label key, filtered by want.
func (s snapshot) by(name, key string, want map[string]string) map[string]float64 {
	out := map[string]float64{}
	for _, x := range s {
		if x.name != name {
			continue
		}
		ok := true
		for k, v := range want {
			if x.labels[k] != v {
				ok = false
			}
		}
		if ok {
			out[x.labels[key]] += x.value
		}
	}
	return out
}

// deltaBy returns after−before of by(name, key, want), dropping zeros.
func deltaBy(before, after snapshot, name, key string, want map[string]string) map[string]float64 {
	a, b := after.by(name, key, want), before.by(name, key, want)
	out := map[string]float64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok && v != 0 {
			out[k] = -v
		}
	}
	return out
}

// scrape reads the Prometheus text exposition at url.
func scrape(ctx context.Context, client *http.Client, url string) (snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseText(resp.Body)
}

// parseText parses the Prometheus text format (untyped; histograms appear as their series).
func parseText(r io.Reader) (snapshot, error) {
	var out snapshot
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var s sample
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.name = line[:i]
			labels, after, err := parseLabels(line[i+1:])
			if err != nil {
				return nil, fmt.Errorf("metrics line %q: %w", line, err)
			}
			s.labels, rest = labels, after
		} else if i >= 0 {
			s.name, rest = line[:i], line[i:]
		} else {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseLabels parses `a="x",b="y"}` and returns the labels and what follows the brace.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], nil
		}
		eq := strings.Index(s, "=")
		if eq < 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return nil, "", fmt.Errorf("bad label list")
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var b strings.Builder
		i := 0
		for ; i < len(s); i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			if s[i] == '"' {
				break
			}
			b.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, "", fmt.Errorf("unterminated label value")
		}
		labels[key] = b.String()
		s = s[i+1:]
	}
}

// rssBytes returns the resident set size of pid from /proc/<pid>/status (VmRSS).
func rssBytes(pid int) (int64, error) { return procStatusBytes(pid, "VmRSS:") }

// procStatusBytes returns the size on the line of /proc/<pid>/status starting with field
// (VmRSS:, VmHWM: the peak resident set size).
func procStatusBytes(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// memoryBreakdown splits a process's resident set: anonymous memory (the Go heap, stacks and
// runtime) and pages of its executable mapped from the file (code and read-only data the
// process has run or read, shared with every other process of that file).
type memoryBreakdown struct {
	AnonMiB      float64 `json:"anonMiB"`
	FileMiB      float64 `json:"fileMiB"`
	HeapInuseMiB float64 `json:"heapInuseMiB"`
	HeapGoalMiB  float64 `json:"heapGoalMiB"`
	StackMiB     float64 `json:"stackMiB"`
	// FreeMiB is heap memory the collector freed and the runtime has not yet returned to the
	// kernel; RuntimeMiB the runtime's own structures (span and cache metadata, GC metadata,
	// profiling buckets, other).
	FreeMiB    float64 `json:"freeMiB"`
	RuntimeMiB float64 `json:"runtimeMiB"`
}

// residentSplit reads pid's RssAnon and RssFile.
func residentSplit(pid int) (*memoryBreakdown, error) {
	anon, err := procStatusBytes(pid, "RssAnon:")
	if err != nil {
		return nil, err
	}
	file, err := procStatusBytes(pid, "RssFile:")
	if err != nil {
		return nil, err
	}
	return &memoryBreakdown{AnonMiB: float64(anon) / mib, FileMiB: float64(file) / mib}, nil
}

// addHeap fills in, from a metrics snapshot s, the Go heap in use, the heap size at which the
// next collection starts (what was live after the last one times 1 + GOGC/100), the stacks,
// freed heap not yet returned to the kernel and the runtime's own structures.
func (b *memoryBreakdown) addHeap(s snapshot) {
	b.HeapInuseMiB = s.sum("go_memstats_heap_inuse_bytes", nil) / mib
	b.HeapGoalMiB = s.sum("go_memstats_next_gc_bytes", nil) / mib
	b.StackMiB = s.sum("go_memstats_stack_inuse_bytes", nil) / mib
	b.FreeMiB = (s.sum("go_memstats_heap_idle_bytes", nil) - s.sum("go_memstats_heap_released_bytes", nil)) / mib
	b.RuntimeMiB = (s.sum("go_memstats_mspan_inuse_bytes", nil) + s.sum("go_memstats_mcache_inuse_bytes", nil) +
		s.sum("go_memstats_gc_sys_bytes", nil) + s.sum("go_memstats_buck_hash_sys_bytes", nil) +
		s.sum("go_memstats_other_sys_bytes", nil)) / mib
}

// mib is a mebibyte.
const mib = 1 << 20
