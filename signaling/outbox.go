package signaling

import (
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/assist-video/assist/signaling/wire"
)

// outbox is a socket's queue of frames for its writer goroutine, shared by the session socket
// and the staff socket. Queuing never blocks: a client too slow to read a full outbox is
// disconnected (overflowed closes, and the socket's loop ends). The queue is never closed, so
// any goroutine may queue at any time, even after the socket has ended.
type outbox struct {
	frames     chan []byte
	overflowed chan struct{} // closed when a frame found the queue full
	overflow   sync.Once
	log        *slog.Logger // encoding errors
}

func (o *outbox) init(size int, log *slog.Logger) {
	o.frames = make(chan []byte, size)
	o.overflowed = make(chan struct{})
	o.log = log
}

// send encodes a message and queues it.
func (o *outbox) send(t wire.Type, payload any) {
	frame, err := wire.Encode(t, payload)
	if err != nil {
		o.log.Error("encode", "type", t, "err", err)
		return
	}
	o.sendEncoded(frame)
}

// sendEncoded queues a frame already encoded.
func (o *outbox) sendEncoded(frame []byte) {
	select {
	case o.frames <- frame:
	default:
		o.overflow.Do(func() { close(o.overflowed) })
	}
}

func (o *outbox) sendError(e *wire.Error) { o.send(wire.TypeError, e) }

// writeFrames sends the queued frames on conn, with a ping every pingInterval, until stop is
// closed; then it sends what is still queued (a last error) and a close frame with the code
// and reason goodbye gives. It returns early when a write fails, and closes done when it
// returns.
func (o *outbox) writeFrames(conn *websocket.Conn, stop <-chan struct{}, goodbye func() (int, string), done chan<- struct{}) {
	defer close(done)
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	write := func(kind int, frame []byte) bool {
		_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		return conn.WriteMessage(kind, frame) == nil
	}
	for {
		select {
		case <-stop:
			for {
				select {
				case frame := <-o.frames:
					if !write(websocket.TextMessage, frame) {
						return
					}
				default:
					code, text := goodbye()
					write(websocket.CloseMessage, websocket.FormatCloseMessage(code, text))
					return
				}
			}
		case frame := <-o.frames:
			if !write(websocket.TextMessage, frame) {
				return
			}
		case <-ping.C:
			if !write(websocket.PingMessage, nil) {
				return
			}
		}
	}
}
