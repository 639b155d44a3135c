// BourseSimulator
