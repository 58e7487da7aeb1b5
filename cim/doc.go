// Package cim is gridlink's common information model: the controlled
// vocabulary of quantities with their canonical units, the asset and site
// types of the pilot installations, and the reading that every connector,
// ingest path and store speaks. It does no I/O.
//
// A reading is one value of one series at one instant. A series is
// (site, asset, quantity, phase). Values are held in the quantity's canonical
// unit (W, Wh, V, A, °C, ...); conversion happens once, on the way in.
// Times are UTC Unix milliseconds.
package cim
