package recording

import (
	"encoding/hex"
	"testing"
)

func TestParseSPS(t *testing.T) {
	for _, tc := range []struct {
		name          string
		sps           string // hex, as libx264 wrote it (emulation prevention bytes included)
		profile       byte
		width, height int
	}{
		{"the test clip's constrained baseline SPS crops 192 coded lines to 180", "6742c00dda05067e7c0440000003004000000f23c50aa8", 66, 320, 180},
		{"a high-profile 1080p SPS crops 1088 lines to 1080", "67640028acd940780227e5c044000003000400000300f03c60c658", 100, 1920, 1080},
		{"a high 4:4:4 SPS reads the chroma format", "67f4001e919b281405ff138088000003000800000301e078b16cb0", 244, 640, 360},
		{"a main-profile 720p SPS", "674d401feca02802dd8088000003000800000301e078c18cb0", 77, 1280, 720},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nal, _ := hex.DecodeString(tc.sps)
			s, err := parseSPS(nal)
			if err != nil {
				t.Fatalf("parseSPS: %v", err)
			}
			if s.profile != tc.profile || s.width != tc.width || s.height != tc.height {
				t.Errorf("profile %d, %dx%d; want %d, %dx%d", s.profile, s.width, s.height, tc.profile, tc.width, tc.height)
			}
			pps := []byte{0x68, 0xce, 0x3c, 0x80}
			cfg := avcDecoderConfig(s, nal, pps)
			if cfg[0] != 1 || cfg[1] != nal[1] || cfg[2] != nal[2] || cfg[3] != nal[3] || cfg[4] != 0xff || cfg[5] != 0xe1 {
				t.Errorf("AVCDecoderConfigurationRecord header % x", cfg[:6])
			}
			if got := cfg[6+2 : 6+2+len(nal)]; string(got) != string(nal) {
				t.Errorf("record does not carry the SPS")
			}
		})
	}
	t.Run("truncated or foreign NAL units are refused", func(t *testing.T) {
		for _, b := range [][]byte{nil, {0x67}, {0x67, 0x42, 0xc0, 0x0d}, {0x68, 0xce, 0x3c, 0x80}} {
			if _, err := parseSPS(b); err == nil {
				t.Errorf("parseSPS(% x) succeeded", b)
			}
		}
	})
}

func TestScanH264FindsParameterSetsAndIDR(t *testing.T) {
	sps, _ := hex.DecodeString("6742c00dda05067e7c0440000003004000000f23c50aa8")
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	idr := []byte{0x65, 0x88, 0x84, 0x00}
	au := scanH264(appendAVCC(appendAVCC(appendAVCC(nil, sps), pps), idr))
	if !au.valid || !au.idr || string(au.sps) != string(sps) || string(au.pps) != string(pps) {
		t.Errorf("scanH264 = %+v", au)
	}
	if au := scanH264(appendAVCC(nil, []byte{0x41, 0x9a})); !au.valid || au.idr || au.sps != nil {
		t.Errorf("a P slice: %+v", au)
	}
	if au := scanH264([]byte{0, 0, 0, 9, 0x65}); au.valid {
		t.Errorf("a cut frame is valid: %+v", au)
	}
}
