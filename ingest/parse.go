package ingest

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// reasonTime is the reason given for a time that cannot be read.
const reasonTime = "not an RFC 3339 time or Unix milliseconds"

// parseTime reads a time written as RFC 3339 (any offset; converted to UTC;
// digits below the millisecond truncated) or as an integer of Unix
// milliseconds. It returns UTC Unix milliseconds.
func parseTime(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	if c := b[len(b)-1]; '0' <= c && c <= '9' && len(b) < 20 {
		if ms, ok := parseInt(b); ok {
			return ms, true
		}
	}
	return parseRFC3339(b)
}

// parseInt reads an optionally signed decimal integer of at most 18 digits,
// so that it cannot overflow.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// parseMillis reads a JSON number of Unix milliseconds: an integer, or a
// number of integral value written with a fraction or an exponent
// (1.7642376e12), up to 2^62 in magnitude.
func parseMillis(b []byte) (int64, bool) {
	if ms, ok := parseInt(b); ok {
		return ms, true
	}
	if ms, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		return ms, true
	}
	f, ok, rangeErr := parseFloat(b)
	if !ok || rangeErr || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		return 0, false
	}
	return int64(f), true
}

// parseRFC3339 reads RFC 3339 section 5.6 date-time:
// YYYY-MM-DD"T"hh:mm:ss[.frac]("Z"|("+"|"-")hh:mm). "T" and "Z" may be lower
// case and the "T" may be a space, as the RFC allows. Leap seconds (second 60)
// are refused, as time.Parse does.
func parseRFC3339(b []byte) (int64, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	switch b[10] {
	case 'T', 't', ' ':
	default:
		return 0, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	i := 19
	var ms int64
	if b[i] == '.' {
		i++
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			if i-start < 3 {
				ms = ms*10 + int64(b[i]-'0')
			}
			i++
		}
		n := i - start
		if n == 0 {
			return 0, false
		}
		for ; n < 3; n++ {
			ms *= 10
		}
	}
	if i >= len(b) {
		return 0, false
	}
	var offset int64 // seconds east of UTC
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return 0, false
		}
		oh, ok1 := digits(b[i+1 : i+3])
		om, ok2 := digits(b[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = oh*3600 + om*60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, false
	}
	if i != len(b) {
		return 0, false
	}
	secs := daysFromCivil(year, month, day)*86400 + hour*3600 + minute*60 + sec - offset
	return secs*1000 + ms, true
}

// digits reads a short run of decimal digits.
func digits(b []byte) (int64, bool) {
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// daysIn returns the number of days of a month of the proleptic Gregorian
// calendar.
func daysIn(month, year int64) int64 {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a date of the proleptic
// Gregorian calendar (the well-known era algorithm; exact for every year).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat reads a decimal number as strconv.ParseFloat does, with the same
// result. Plain decimals of at most 15 significant digits take an exact fast
// path that does not allocate: an integer below 2^53 divided by an exactly
// representable power of ten is correctly rounded by IEEE 754 division.
// Anything else (exponents, NaN, Inf, long mantissas) goes to strconv.
// ok is false for text that is not a number; rangeErr is true when the number
// is too large for a float64.
func parseFloat(b []byte) (v float64, ok, rangeErr bool) {
	i := 0
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i++
	}
	var mant uint64
	nd, all, frac := 0, 0, 0 // significant digits, all digits, digits after the dot
	dot := false
	for ; i < len(b); i++ {
		c := b[i]
		if c == '.' && !dot {
			dot = true
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		all++
		mant = mant*10 + uint64(c-'0')
		if mant != 0 {
			nd++
		}
		if dot {
			frac++
		}
	}
	if i == len(b) && all > 0 && nd <= 15 && frac < len(pow10) {
		v = float64(mant) / pow10[frac]
		if neg {
			v = -v
		}
		return v, true, false
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		if ne, isNum := err.(*strconv.NumError); isNum && ne.Err == strconv.ErrRange {
			return f, true, true
		}
		return 0, false, false
	}
	return f, true, false
}

// Interning limits: at most maxInterned strings of at most maxInternLen bytes
// are kept; beyond that the set starts afresh, so memory stays bounded
// whatever the input.
const (
	maxInterned  = 16384
	maxInternLen = 64
)

// interner turns byte slices into strings, sharing one string for equal
// contents, so that decoding the same asset and quantity names again and again
// does not allocate. The strings it returns are ordinary immutable strings.
type interner struct {
	m map[string]string
}

func (in *interner) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternLen {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if in.m == nil {
		in.m = make(map[string]string, 256)
	} else if len(in.m) >= maxInterned {
		clear(in.m)
	}
	s := string(b)
	in.m[s] = s
	return s
}

// maxValueLen bounds the offending value kept in a RowError, in bytes.
const maxValueLen = 128

// clip returns b as a string of at most maxValueLen bytes, cut at a rune
// boundary and marked with "..." when cut, so that kept errors stay small.
func clip(b []byte) string {
	if len(b) <= maxValueLen {
		return string(b)
	}
	n := maxValueLen
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return string(b[:n]) + "..."
}
