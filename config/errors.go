package config

import (
	"fmt"
	"strings"
)

// Error is one problem found in a configuration file. Line is 1-based; 0 means the problem
// is about something absent from the file (for example no interface at all), so only the
// file name is printed.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return position(e.File, e.Line) + e.Msg }

// ErrorList is every error a stage found, in file order. Parse stops at the first syntax
// error (as corosync does); the later stages report all problems they see at once.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find the individual *Error values.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Warning is something corosync accepts that is probably a mistake, or a key gototem
// (like corosync 3) ignores. Warnings never make a configuration invalid.
type Warning struct {
	File string
	Line int
	Msg  string
}

func (w Warning) String() string { return position(w.File, w.Line) + "warning: " + w.Msg }

// Warnings is a list of warnings in the order they were found.
type Warnings []Warning

func position(file string, line int) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d: ", file, line)
	}
	return file + ": "
}

// diag collects errors and warnings for one file.
type diag struct {
	file  string
	errs  ErrorList
	warns Warnings
}

func (d *diag) errorf(line int, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (d *diag) warnf(line int, format string, args ...any) {
	d.warns = append(d.warns, Warning{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}
