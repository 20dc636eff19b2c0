package data

// RaceEnabled lets the external tests skip what is only slow under -race.
const RaceEnabled = raceEnabled
