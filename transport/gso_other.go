//go:build !linux

package transport

// gsoWriter: UDP segmentation offload is Linux-only.
type gsoWriter struct{}

func newGSOWriter() *gsoWriter { return nil }

func (l *Link) sendGSO(*udpSock, func(error)) int { return 0 }
