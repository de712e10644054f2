module github.com/gototem/gototem

go 1.25.0

require (
	github.com/gopacket/gopacket v1.7.7
	golang.org/x/crypto v0.55.0
	golang.org/x/net v0.58.0
	golang.org/x/sys v0.47.0
	pgregory.net/rapid v1.3.0
)
