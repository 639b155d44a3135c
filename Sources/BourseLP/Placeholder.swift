// BourseLP
