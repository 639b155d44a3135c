// BourseTransport
