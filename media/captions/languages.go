package captions

import "strings"

// whisperLanguages maps the language names Whisper reports (OpenAI's and whisper.cpp's
// verbose_json say "english", not "en") to ISO 639-1 codes.
var whisperLanguages = map[string]string{
	"afrikaans": "af", "albanian": "sq", "amharic": "am", "arabic": "ar", "armenian": "hy",
	"assamese": "as", "azerbaijani": "az", "bashkir": "ba", "basque": "eu", "belarusian": "be",
	"bengali": "bn", "bosnian": "bs", "breton": "br", "bulgarian": "bg", "burmese": "my",
	"cantonese": "yue", "castilian": "es", "catalan": "ca", "chinese": "zh", "croatian": "hr",
	"czech": "cs", "danish": "da", "dutch": "nl", "english": "en", "estonian": "et",
	"faroese": "fo", "finnish": "fi", "flemish": "nl", "french": "fr", "galician": "gl",
	"georgian": "ka", "german": "de", "greek": "el", "gujarati": "gu", "haitian creole": "ht",
	"haitian": "ht", "hausa": "ha", "hawaiian": "haw", "hebrew": "he", "hindi": "hi",
	"hungarian": "hu", "icelandic": "is", "indonesian": "id", "italian": "it", "japanese": "ja",
	"javanese": "jv", "kannada": "kn", "kazakh": "kk", "khmer": "km", "korean": "ko", "lao": "lo",
	"latin": "la", "latvian": "lv", "lingala": "ln", "lithuanian": "lt", "luxembourgish": "lb",
	"macedonian": "mk", "malagasy": "mg", "malay": "ms", "malayalam": "ml", "maltese": "mt",
	"maori": "mi", "marathi": "mr", "moldavian": "ro", "moldovan": "ro", "mongolian": "mn",
	"myanmar": "my", "nepali": "ne", "norwegian": "no", "nynorsk": "nn", "occitan": "oc",
	"panjabi": "pa", "pashto": "ps", "persian": "fa", "polish": "pl", "portuguese": "pt",
	"punjabi": "pa", "pushto": "ps", "romanian": "ro", "russian": "ru", "sanskrit": "sa",
	"serbian": "sr", "shona": "sn", "sindhi": "sd", "sinhala": "si", "sinhalese": "si",
	"slovak": "sk", "slovenian": "sl", "somali": "so", "spanish": "es", "sundanese": "su",
	"swahili": "sw", "swedish": "sv", "tagalog": "tl", "tajik": "tg", "tamil": "ta", "tatar": "tt",
	"telugu": "te", "thai": "th", "tibetan": "bo", "turkish": "tr", "turkmen": "tk",
	"ukrainian": "uk", "urdu": "ur", "uzbek": "uz", "valencian": "ca", "vietnamese": "vi",
	"welsh": "cy", "yiddish": "yi", "yoruba": "yo",
}

// languageCode turns what a provider says about the language into an ISO 639 code: a code
// stays a code ("en", "en-US" → "en"; Whisper's "jw" is Javanese, "jv"), a name is looked up;
// anything else is "" (unknown), and the speaker's own setting is used instead.
func languageCode(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return ""
	}
	if code, ok := whisperLanguages[s]; ok {
		return code
	}
	base := BaseLanguage(s)
	if base == "jw" {
		return "jv"
	}
	if len(base) == 2 || len(base) == 3 {
		return base
	}
	return ""
}
