package queue

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gridlink/gridlink/cim"
)

// Environment of the helper process.
const (
	envCrashDir   = "GRIDLINK_QUEUE_CRASH_DIR"
	envCrashStart = "GRIDLINK_QUEUE_CRASH_START"
	envCrashAck   = "GRIDLINK_QUEUE_CRASH_ACK" // "1": run the consumer
)

// crashOpts are the options of both sides of the crash test: small segments
// so that rotation and deletion happen often.
var crashOpts = Options{SegmentBytes: 8 << 10}

// TestHelperAppender is not a test: TestCrash runs it in a child process,
// which appends readings numbered from $GRIDLINK_QUEUE_CRASH_START in
// batches of random size and prints "a N" once the batch ending with
// reading N is acknowledged, while a consumer peeks and acks, printing "p N"
// before it acknowledges the readings up to N to the queue and "c N" after.
// It runs until killed.
func TestHelperAppender(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("helper process for TestCrash")
	}
	start, err := strconv.Atoi(os.Getenv(envCrashStart))
	if err != nil {
		t.Fatal(err)
	}
	q, err := Open(dir, crashOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	say := func(kind byte, n int) {
		out.Lock()
		defer out.Unlock()
		// One write per line, so a kill never interleaves lines.
		os.Stdout.WriteString(string(kind) + " " + strconv.Itoa(n) + "\n")
	}
	consume := func() {
		for {
			ch := q.Appended()
			rs, c, err := q.Peek(1 + rand.IntN(300))
			if err != nil {
				fmt.Fprintln(os.Stderr, "peek:", err)
				os.Exit(2)
			}
			if len(rs) == 0 {
				<-ch
				continue
			}
			say('p', number(rs[len(rs)-1]))
			if err := q.Ack(c); err != nil {
				fmt.Fprintln(os.Stderr, "ack:", err)
				os.Exit(2)
			}
			say('c', number(rs[len(rs)-1]))
		}
	}
	if os.Getenv(envCrashAck) == "1" {
		go consume()
	}
	for n := start; ; {
		k := 1 + rand.IntN(50)
		if err := q.Append(readings(n, k)); err != nil {
			fmt.Fprintln(os.Stderr, "append:", err)
			os.Exit(2)
		}
		n += k
		say('a', n-1)
	}
}

// number returns the number readings() gave a reading.
func number(r cim.Reading) int { return int((r.Time - 1_780_000_000_000) / 1000) }

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	start := 0
	for round := range 8 {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperAppender$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashStart+"="+strconv.Itoa(start),
			envCrashAck+"="+strconv.Itoa(round%2))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of acknowledged appends.
		killAt := 20 + rand.IntN(400)
		appended, acking, consumed := start-1, start-1, start-1
		sc := bufio.NewScanner(stdout)
		lines := 0
		for sc.Scan() { // after the kill, the lines written before it
			kind, num, ok := strings.Cut(sc.Text(), " ")
			n, err := strconv.Atoi(num)
			if !ok || err != nil {
				continue
			}
			switch kind {
			case "a":
				appended = n
				lines++
			case "p":
				acking = n
			case "c":
				consumed = n
			}
			if lines == killAt {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		cmd.Wait()
		if lines < killAt {
			t.Fatalf("round %d: child ended after %d appends: %s", round, lines, stderr.String())
		}

		q, err := Open(dir, crashOpts)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		got := drain(t, q, 1000)
		if st := q.Stats(); st.Dropped != 0 {
			t.Fatalf("round %d: dropped %d", round, st.Dropped)
		}
		q.Close()
		// What survives is one run of consecutive readings: it starts
		// after the last reading whose Ack returned and at the latest
		// after the last one an Ack was started for, and it holds every
		// reading whose Append returned. The unacknowledged tail may be
		// there or not.
		prev := acking
		if len(got) > 0 {
			first := number(got[0])
			if first <= consumed || first > acking+1 {
				t.Fatalf("round %d: first reading %d; acked %d, acking %d", round, first, consumed, acking)
			}
			prev = first - 1
		}
		for i, r := range got {
			n := number(r)
			if want := readings(n, 1)[0]; r != want {
				t.Fatalf("round %d: reading %d is %+v, want %+v", round, i, r, want)
			}
			if n != prev+1 {
				t.Fatalf("round %d: reading %d (number %d) after %d: repeated, lost or out of order", round, i, n, prev)
			}
			prev = n
		}
		if prev < appended {
			t.Fatalf("round %d: acknowledged readings %d..%d missing", round, prev+1, appended)
		}
		t.Logf("round %d: killed after %d appends; %d consumed, %d recovered", round, lines, consumed-start+1, len(got))
		start = prev + 1_000_000
	}
}
