package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progressEvery is how often a long command reports on a non-terminal: often enough that a
// user (or a CI log) sees it is alive within seconds, rarely enough not to flood a log.
const progressEvery = 2 * time.Second

// ticker prints a progress line to w (stderr: stdout stays the command's deterministic result)
// at most every progressEvery, and only once that much time has passed since the start.
type ticker struct {
	mu   sync.Mutex
	w    io.Writer
	last time.Time
	now  func() time.Time
}

func newTicker(w io.Writer) *ticker {
	return &ticker{w: w, last: time.Now(), now: time.Now}
}

// maybe prints the line format makes when progressEvery has passed since the last one.
func (t *ticker) maybe(format string, a ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := t.now(); now.Sub(t.last) >= progressEvery {
		t.last = now
		fmt.Fprintf(t.w, format+"\n", a...)
	}
}

// every calls line every progressEvery until stop is closed, printing what it returns.
func every(w io.Writer, stop <-chan struct{}, line func() string) {
	tk := time.NewTicker(progressEvery)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
			fmt.Fprintln(w, line())
		}
	}
}
