package recording

import (
	"encoding/binary"
	"errors"
)

// H.264 NAL unit types the recorder cares about (ITU-T H.264, table 7-1).
const (
	nalSlice = 1
	nalIDR   = 5
	nalSPS   = 7
	nalPPS   = 8
)

// h264AccessUnit is what the recorder needs to know about one H.264 frame in AVCC form (each
// NAL unit preceded by its 4-byte big-endian length, as pion's H264Packet with IsAVC writes
// it). sps and pps point into the frame.
type h264AccessUnit struct {
	idr      bool
	sps, pps []byte
	valid    bool // every length prefix fits
}

// scanH264 walks the NAL units of an AVCC frame without copying.
func scanH264(frame []byte) h264AccessUnit {
	au := h264AccessUnit{valid: true}
	for len(frame) > 0 {
		if len(frame) < 4 {
			au.valid = false
			break
		}
		n := int(binary.BigEndian.Uint32(frame))
		frame = frame[4:]
		if n == 0 || n > len(frame) {
			au.valid = false
			break
		}
		nal := frame[:n]
		frame = frame[n:]
		switch nal[0] & 0x1f {
		case nalIDR:
			au.idr = true
		case nalSPS:
			au.sps = nal
		case nalPPS:
			au.pps = nal
		}
	}
	return au
}

// appendAVCC appends a NAL unit with its 4-byte length prefix.
func appendAVCC(b, nal []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(nal)))
	return append(b, nal...)
}

// h264SPS is what the recorder reads from a sequence parameter set.
type h264SPS struct {
	profile, constraints, level  byte
	chromaFormat                 uint
	bitDepthLuma, bitDepthChroma uint // minus 8
	width, height                int
}

var errBadSPS = errors.New("recording: malformed H.264 SPS")

// parseSPS reads a sequence parameter set NAL unit (header byte included) as far as the
// picture size, cropping included (ITU-T H.264, 7.3.2.1.1 and 7.4.2.1.1).
func parseSPS(nal []byte) (h264SPS, error) {
	if len(nal) < 4 || nal[0]&0x1f != nalSPS {
		return h264SPS{}, errBadSPS
	}
	r := bitReader{b: unescapeRBSP(nal[1:])}
	var s h264SPS
	s.profile = byte(r.bits(8))
	s.constraints = byte(r.bits(8))
	s.level = byte(r.bits(8))
	r.ue() // seq_parameter_set_id
	s.chromaFormat = 1
	separateColourPlane := false
	switch s.profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		s.chromaFormat = r.ue()
		if s.chromaFormat > 3 {
			return h264SPS{}, errBadSPS
		}
		if s.chromaFormat == 3 {
			separateColourPlane = r.bit() == 1
		}
		s.bitDepthLuma = r.ue()
		s.bitDepthChroma = r.ue()
		r.bit()           // qpprime_y_zero_transform_bypass_flag
		if r.bit() == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if s.chromaFormat == 3 {
				lists = 12
			}
			for i := range lists {
				if r.bit() == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					r.skipScalingList(size)
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.bit() // delta_pic_order_always_zero_flag
		r.se()  // offset_for_non_ref_pic
		r.se()  // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return h264SPS{}, errBadSPS
		}
		for range n {
			r.se() // offset_for_ref_frame
		}
	}
	r.ue()  // max_num_ref_frames
	r.bit() // gaps_in_frame_num_value_allowed_flag
	widthMBs := r.ue() + 1
	heightMapUnits := r.ue() + 1
	frameMBsOnly := r.bit()
	if frameMBsOnly == 0 {
		r.bit() // mb_adaptive_frame_field_flag
	}
	r.bit() // direct_8x8_inference_flag
	var cropLeft, cropRight, cropTop, cropBottom uint
	if r.bit() == 1 {
		cropLeft, cropRight, cropTop, cropBottom = r.ue(), r.ue(), r.ue(), r.ue()
	}
	if r.err {
		return h264SPS{}, errBadSPS
	}

	// Crop units (7-19 to 7-22).
	chromaArrayType := s.chromaFormat
	if separateColourPlane {
		chromaArrayType = 0
	}
	cropX, cropY := uint(1), 2-frameMBsOnly
	if chromaArrayType != 0 {
		subWidth, subHeight := uint(2), uint(2) // 4:2:0
		switch chromaArrayType {
		case 2:
			subHeight = 1
		case 3:
			subWidth, subHeight = 1, 1
		}
		cropX, cropY = subWidth, subHeight*(2-frameMBsOnly)
	}
	w := widthMBs*16 - cropX*(cropLeft+cropRight)
	h := (2-frameMBsOnly)*heightMapUnits*16 - cropY*(cropTop+cropBottom)
	if widthMBs > 1<<12 || heightMapUnits > 1<<12 || int(w) <= 0 || int(h) <= 0 ||
		cropX*(cropLeft+cropRight) >= widthMBs*16 || cropY*(cropTop+cropBottom) >= (2-frameMBsOnly)*heightMapUnits*16 {
		return h264SPS{}, errBadSPS
	}
	s.width, s.height = int(w), int(h)
	return s, nil
}

// avcDecoderConfig builds the AVCDecoderConfigurationRecord (ISO/IEC 14496-15, 5.3.3.1) that
// Matroska carries as the CodecPrivate of V_MPEG4/ISO/AVC, with 4-byte NAL lengths.
func avcDecoderConfig(sps h264SPS, spsNAL, ppsNAL []byte) []byte {
	b := make([]byte, 0, 11+len(spsNAL)+len(ppsNAL)+4)
	b = append(b, 1, sps.profile, sps.constraints, sps.level,
		0xfc|3, // lengthSizeMinusOne
		0xe0|1) // one SPS
	b = binary.BigEndian.AppendUint16(b, uint16(len(spsNAL)))
	b = append(b, spsNAL...)
	b = append(b, 1) // one PPS
	b = binary.BigEndian.AppendUint16(b, uint16(len(ppsNAL)))
	b = append(b, ppsNAL...)
	switch sps.profile {
	case 100, 110, 122, 144:
		b = append(b, 0xfc|byte(sps.chromaFormat), 0xf8|byte(sps.bitDepthLuma), 0xf8|byte(sps.bitDepthChroma), 0)
	}
	return b
}

// unescapeRBSP removes emulation prevention bytes (0x000003 → 0x0000).
func unescapeRBSP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// bitReader reads an RBSP bit by bit; reading past the end sets err and yields zeros.
type bitReader struct {
	b   []byte
	pos int // in bits
	err bool
}

func (r *bitReader) bit() uint {
	if r.pos >= len(r.b)*8 {
		r.err = true
		return 0
	}
	v := uint(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v
}

func (r *bitReader) bits(n int) uint {
	var v uint
	for range n {
		v = v<<1 | r.bit()
	}
	return v
}

// ue reads an unsigned Exp-Golomb code (9.1).
func (r *bitReader) ue() uint {
	zeros := 0
	for r.bit() == 0 {
		if r.err || zeros > 31 {
			r.err = true
			return 0
		}
		zeros++
	}
	return 1<<zeros - 1 + r.bits(zeros)
}

// se reads a signed Exp-Golomb code (9.1.1).
func (r *bitReader) se() int {
	k := r.ue()
	if k%2 == 1 {
		return int(k+1) / 2
	}
	return -int(k / 2)
}

// skipScalingList skips a scaling_list() of the given size (7.3.2.1.1.1).
func (r *bitReader) skipScalingList(size int) {
	last, next := 8, 8
	for range size {
		if next != 0 {
			next = (last + r.se() + 256) % 256
		}
		if next != 0 {
			last = next
		}
		if r.err {
			return
		}
	}
}
