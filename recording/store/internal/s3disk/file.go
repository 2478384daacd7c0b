package s3disk

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// An object file is the object's bytes followed by a footer:
//
//	content | meta JSON | uint64 big-endian length of the JSON | magic
//
// One file per object means one rename commits an object: a reader sees the
// old object or the new one, never a mix, and a crash leaves no half-written
// object, only a temp file that Open deletes. The footer goes last because
// the content's MD5 is known only after the content has streamed through.
const magic = "assist1\n"

const (
	footerLen  = 8 + len(magic)
	maxMetaLen = 1 << 20
)

// errCorrupt marks a file that is not a complete object file.
var errCorrupt = errors.New("s3disk: not a complete object file")

// objectMeta is the JSON in an object file's footer.
type objectMeta struct {
	Key      string            `json:"key"`
	MD5      []byte            `json:"md5"`
	Modified time.Time         `json:"modified"`
	Headers  map[string]string `json:"headers,omitempty"`
}

// writeFooter appends the footer to a file holding the object's content.
func writeFooter(w io.Writer, m objectMeta) error {
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	footer := make([]byte, 0, len(js)+footerLen)
	footer = append(footer, js...)
	footer = binary.BigEndian.AppendUint64(footer, uint64(len(js)))
	footer = append(footer, magic...)
	_, err = w.Write(footer)
	return err
}

// readFooter reads an object file's metadata and the length of its content.
func readFooter(f *os.File) (objectMeta, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return objectMeta{}, 0, err
	}
	if st.Size() < int64(footerLen) {
		return objectMeta{}, 0, errCorrupt
	}
	var tail [footerLen]byte
	if _, err := f.ReadAt(tail[:], st.Size()-int64(footerLen)); err != nil {
		return objectMeta{}, 0, err
	}
	if string(tail[8:]) != magic {
		return objectMeta{}, 0, errCorrupt
	}
	jsLen := binary.BigEndian.Uint64(tail[:8])
	if jsLen > maxMetaLen || int64(jsLen) > st.Size()-int64(footerLen) {
		return objectMeta{}, 0, errCorrupt
	}
	size := st.Size() - int64(footerLen) - int64(jsLen)
	js := make([]byte, jsLen)
	if _, err := f.ReadAt(js, size); err != nil {
		return objectMeta{}, 0, err
	}
	var m objectMeta
	if err := json.Unmarshal(js, &m); err != nil {
		return objectMeta{}, 0, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return m, size, nil
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
