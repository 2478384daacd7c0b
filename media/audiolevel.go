package media

import (
	"strconv"
	"strings"
)

// AudioLevelExtensionID reads from a participant's SDP (its offer or its answer) the ID under
// which its audio packets carry the audio level (AudioLevelURI), 0 when it does not send it.
// The answerer keeps the offerer's IDs (RFC 8285), so either description of a negotiation
// gives the ID the publisher writes; a media tap that reads levels (captions) needs it.
func AudioLevelExtensionID(sdp string) uint8 {
	audio := false
	for line := range strings.Lines(sdp) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "m=") {
			audio = strings.HasPrefix(line, "m=audio ")
			continue
		}
		rest, ok := strings.CutPrefix(line, "a=extmap:")
		if !audio || !ok {
			continue
		}
		idDir, uri, _ := strings.Cut(rest, " ")
		if f := strings.Fields(uri); len(f) == 0 || f[0] != AudioLevelURI {
			continue
		}
		idText, _, _ := strings.Cut(idDir, "/")
		if id, err := strconv.Atoi(idText); err == nil && id > 0 && id < 15 {
			return uint8(id) // one-byte header IDs, which browsers use for it
		}
	}
	return 0
}
