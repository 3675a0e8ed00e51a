"""Weave calls as Freeplay records: conversion, providers, deterministic ids."""
