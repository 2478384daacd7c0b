package media

import (
	"fmt"

	"github.com/pion/dtls/v3"
	"github.com/pion/webrtc/v4"
)

// srtpProfiles are the SRTP protection profiles the SFU accepts, most preferred first.
// Every packet the SFU forwards is encrypted once per subscriber, so the cipher is paid
// per write: AES-128-GCM with AES-NI authenticates and encrypts in one pass and costs
// less than AES-256-GCM (10 AES rounds instead of 14) and far less than AES-CM with
// HMAC-SHA1, which hashes every packet a second time. The other two stay as fallbacks, so
// that every browser still connects (AES-CM + HMAC-SHA1-80 is the one WebRTC requires).
var srtpProfiles = []dtls.SRTPProtectionProfile{
	dtls.SRTP_AEAD_AES_128_GCM,
	dtls.SRTP_AEAD_AES_256_GCM,
	dtls.SRTP_AES128_CM_HMAC_SHA1_80,
}

// setSRTPPreference makes the SFU's preference the one that counts. In DTLS-SRTP the
// server picks the profile: Pion as server takes its own first choice among the client's,
// but a libwebrtc browser (Chrome, Edge, Safari) as server ranks AES-CM + HMAC-SHA1 above
// the GCM profiles and picks it whenever the client offers it. The browser sends the first
// offer ("actpass") and the SFU answers, so the answer decides the roles: the SFU answers
// as the DTLS server ("passive") and the browser, as client, only proposes.
func setSRTPPreference(s *webrtc.SettingEngine) error {
	s.SetSRTPProtectionProfiles(srtpProfiles...)
	if err := s.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return fmt.Errorf("media: DTLS role: %w", err)
	}
	return nil
}
