// BourseWire
