enum _PlaceholderChaperoneMockUpstream {}
