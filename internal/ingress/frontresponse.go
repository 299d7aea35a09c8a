package ingress

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// frontResponse is the http.ResponseWriter of a request served by the
// front. It writes HTTP/1.1 straight into the connection's buffer:
// Content-Length when the handler sets it, chunked otherwise.
type frontResponse struct {
	c           *frontConn
	req         *http.Request
	h           http.Header
	wroteHeader bool
	status      int
	bodyOK      bool // the status and method allow a body
	chunked     bool
	closeAfter  bool
	length      int64 // declared Content-Length, or -1
	written     int64
	err         error // a write to the client failed
}

func (w *frontResponse) reset(req *http.Request) {
	clear(w.h)
	*w = frontResponse{c: w.c, h: w.h, req: req, length: -1, closeAfter: req.Close}
}

// Header returns the response header map.
func (w *frontResponse) Header() http.Header { return w.h }

// WriteHeader sends the status line and header; 1xx codes other than 101
// are sent as interim responses.
func (w *frontResponse) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if code != http.StatusContinue {
			w.writeHead(code)
			w.c.bw.WriteString("\r\n")
			w.err = w.c.bw.Flush()
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	w.bodyOK = w.req.Method != http.MethodHead && code != http.StatusNoContent && code != http.StatusNotModified
	if cl := w.h["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			delete(w.h, "Content-Length")
		}
	} else if len(cl) > 1 {
		delete(w.h, "Content-Length")
	}
	if code == http.StatusNoContent || code == http.StatusNotModified {
		delete(w.h, "Content-Length")
		w.length = -1
	}
	if w.bodyOK && w.length < 0 {
		w.chunked = true
	}
	delete(w.h, "Transfer-Encoding")
	delete(w.h, "Connection")
	w.writeHead(code)
	bw := w.c.bw
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	if _, ok := w.h["Date"]; !ok {
		var buf [len(http.TimeFormat) + 8]byte
		bw.WriteString("Date: ")
		bw.Write(time.Now().UTC().AppendFormat(buf[:0], http.TimeFormat))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
}

// writeHead writes the status line and the header map, without the
// final empty line.
func (w *frontResponse) writeHead(code int) {
	bw := w.c.bw
	bw.WriteString(statusLine(code))
	for k, vv := range w.h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeHeaderValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
}

// writeHeaderValue writes v with CR and LF turned into spaces, as
// net/http does, so no value can split the response.
func writeHeaderValue(bw *bufio.Writer, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(v)
}

// statusLines holds "HTTP/1.1 <code> <text>\r\n" for the known codes.
var statusLines = func() (lines [600]string) {
	for code := 100; code < len(lines); code++ {
		if text := http.StatusText(code); text != "" {
			lines[code] = fmt.Sprintf("HTTP/1.1 %d %s\r\n", code, text)
		}
	}
	return lines
}()

// statusLine returns the status line of code.
func statusLine(code int) string {
	if code >= 100 && code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	return fmt.Sprintf("HTTP/1.1 %03d status code %d\r\n", code, code)
}

// Write writes body bytes, chunked when no length was declared.
func (w *frontResponse) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.bodyOK {
		if w.req.Method == http.MethodHead {
			return len(b), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if len(b) == 0 {
		return 0, nil
	}
	bw := w.c.bw
	if w.chunked {
		var size [20]byte
		bw.Write(strconv.AppendInt(size[:0], int64(len(b)), 16))
		bw.WriteString("\r\n")
		bw.Write(b)
		_, w.err = bw.WriteString("\r\n")
		if w.err != nil {
			return 0, w.err
		}
		return len(b), nil
	}
	if w.written+int64(len(b)) > w.length {
		b = b[:w.length-w.written]
		n, err := bw.Write(b)
		w.written += int64(n)
		if err != nil {
			w.err = err
			return n, err
		}
		return n, http.ErrContentLength
	}
	n, err := bw.Write(b)
	w.written += int64(n)
	w.err = err
	return n, err
}

// Flush sends what is buffered to the client.
func (w *frontResponse) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err == nil {
		w.err = w.c.bw.Flush()
	}
}

// finish ends the response: the status if none was sent, the last chunk
// and the trailers.
func (w *frontResponse) finish() {
	if !w.wroteHeader {
		if w.req.Method != http.MethodHead {
			w.h["Content-Length"] = []string{"0"}
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return
	}
	bw := w.c.bw
	switch {
	case w.chunked:
		bw.WriteString("0\r\n")
		for _, k := range w.announcedTrailers() {
			for _, v := range w.h[k] {
				bw.WriteString(k)
				bw.WriteString(": ")
				writeHeaderValue(bw, v)
				bw.WriteString("\r\n")
			}
		}
		for k, vv := range w.h {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				for _, v := range vv {
					bw.WriteString(name)
					bw.WriteString(": ")
					writeHeaderValue(bw, v)
					bw.WriteString("\r\n")
				}
			}
		}
		_, w.err = bw.WriteString("\r\n")
	case w.bodyOK && w.written < w.length:
		// The body is short of its declared length: the client can
		// only tell by the connection closing.
		w.closeAfter = true
	}
}

// announcedTrailers returns the names the handler announced in its
// Trailer header.
func (w *frontResponse) announcedTrailers() []string {
	var out []string
	for _, v := range w.h["Trailer"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				out = append(out, http.CanonicalHeaderKey(name))
			}
		}
	}
	return out
}

var (
	_ http.ResponseWriter = (*frontResponse)(nil)
	_ http.Flusher        = (*frontResponse)(nil)
)
