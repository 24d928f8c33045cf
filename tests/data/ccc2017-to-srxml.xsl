<?xml version="1.0" encoding="UTF-8"?>
<!--
  A curator's legacy-style stylesheet (XSLT 2.0), written for csv2sr's tests: the Crowds
  Cure Cancer 2017 table, in csv2sr's row/column XML form, to one pixelmed SR XML file (sr/order-NNNN.xml) per
  row (xsl:result-document), plus an index as the principal result.

  Parameters (strings, given with csv2sr xslt - -param):
    codes     URI of an XML list of the codes to write: <codes><code name= cv= csd= cm=/>
              <anatomy cell= organ=/></codes> (the tests make it from csv2sr.dicom.codes, so no
              code is typed twice)
    manifest  URI of csv2sr convert's manifest.csv, for the UIDs of each row
-->
<xsl:stylesheet version="2.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:c="urn:csv2sr:test"
    exclude-result-prefixes="xs c">
  <xsl:output method="xml" indent="yes" encoding="UTF-8"/>
  <xsl:param name="codes" as="xs:string" required="yes"/>
  <xsl:param name="manifest" as="xs:string" required="yes"/>

  <xsl:variable name="code-list" select="doc($codes)/codes"/>
  <xsl:variable name="manifest-lines" select="unparsed-text-lines($manifest)"/>
  <xsl:variable name="manifest-header" select="tokenize($manifest-lines[1], ',')"/>

  <xsl:function name="c:cell" as="xs:string">
    <xsl:param name="row" as="element(row)"/>
    <xsl:param name="name" as="xs:string"/>
    <xsl:sequence select="string($row/column[@name = $name])"/>
  </xsl:function>

  <xsl:function name="c:uid" as="xs:string">
    <xsl:param name="order" as="xs:string"/>
    <xsl:param name="column" as="xs:string"/>
    <xsl:variable name="line" select="$manifest-lines[tokenize(., ',')[2] = $order][1]"/>
    <xsl:variable name="at" select="index-of($manifest-header, $column)"/>
    <xsl:sequence select="tokenize($line, ',')[$at]"/>
  </xsl:function>

  <!-- TM whose leading zeros a spreadsheet dropped: 93309.25 -> 093309.25 -->
  <xsl:function name="c:study-time" as="xs:string">
    <xsl:param name="text" as="xs:string"/>
    <xsl:variable name="whole" select="substring-before(concat($text, '.'), '.')"/>
    <xsl:variable name="fraction" select="substring-after($text, '.')"/>
    <xsl:variable name="padded"
        select="concat(substring('000000', 1, 6 - string-length($whole)), $whole)"/>
    <xsl:sequence select="if ($fraction) then concat($padded, '.', $fraction) else $padded"/>
  </xsl:function>

  <xsl:template name="code">
    <xsl:param name="element" as="xs:string"/>
    <xsl:param name="name" as="xs:string"/>
    <xsl:variable name="code" select="$code-list/code[@name = $name]"/>
    <xsl:if test="not($code)">
      <xsl:message terminate="yes">no code called <xsl:value-of select="$name"/></xsl:message>
    </xsl:if>
    <xsl:element name="{$element}">
      <xsl:attribute name="cm" select="$code/@cm"/>
      <xsl:attribute name="csd" select="$code/@csd"/>
      <xsl:attribute name="cv" select="$code/@cv"/>
    </xsl:element>
  </xsl:template>

  <xsl:template name="concept">
    <xsl:param name="name" as="xs:string"/>
    <xsl:call-template name="code">
      <xsl:with-param name="element" select="'concept'"/>
      <xsl:with-param name="name" select="$name"/>
    </xsl:call-template>
  </xsl:template>

  <xsl:template name="coded-item">
    <xsl:param name="relationship" as="xs:string"/>
    <xsl:param name="concept" as="xs:string"/>
    <xsl:param name="value" as="xs:string"/>
    <code relationship="{$relationship}">
      <xsl:call-template name="concept"><xsl:with-param name="name" select="$concept"/>
      </xsl:call-template>
      <xsl:call-template name="code">
        <xsl:with-param name="element" select="'value'"/>
        <xsl:with-param name="name" select="$value"/>
      </xsl:call-template>
    </code>
  </xsl:template>

  <xsl:template match="/table">
    <index>
      <xsl:for-each select="row">
        <xsl:variable name="href"
            select="concat('sr/order-', format-number(xs:integer(c:cell(., 'order')), '0000'), '.xml')"/>
        <sr href="{$href}" line="{@line}"/>
        <xsl:result-document href="{$href}">
          <xsl:apply-templates select="." mode="sr"/>
        </xsl:result-document>
      </xsl:for-each>
    </index>
  </xsl:template>

  <xsl:template match="row" mode="sr">
    <xsl:variable name="order" select="c:cell(., 'order')"/>
    <xsl:variable name="study-time" select="c:study-time(c:cell(., 'StudyTime'))"/>
    <xsl:variable name="sop-class" select="c:cell(., 'SOPClassUID')"/>
    <xsl:variable name="instance" select="c:cell(., 'instanceUID')"/>
    <xsl:variable name="saved" select="xs:dateTime('1970-01-01T00:00:00Z')
        + xs:dayTimeDuration(concat('PT', c:cell(., 'date_unix'), 'S'))"/>
    <xsl:if test="$sop-class = ''">
      <xsl:message>line <xsl:value-of select="@line"/>: no SOPClassUID</xsl:message>
    </xsl:if>
    <DicomStructuredReport>
      <DicomStructuredReportHeader>
        <SOPClassUID element="0016" group="0008" vr="UI">
          <value number="1">1.2.840.10008.5.1.4.1.1.88.22</value>
        </SOPClassUID>
        <SOPInstanceUID element="0018" group="0008" vr="UI">
          <value number="1"><xsl:value-of select="c:uid($order, 'sop_instance_uid')"/></value>
        </SOPInstanceUID>
        <StudyDate element="0020" group="0008" vr="DA">
          <value number="1"><xsl:value-of select="c:cell(., 'StudyDate')"/></value>
        </StudyDate>
        <ContentDate element="0023" group="0008" vr="DA">
          <value number="1"><xsl:value-of select="format-dateTime($saved, '[Y0001][M01][D01]')"/></value>
        </ContentDate>
        <StudyTime element="0030" group="0008" vr="TM">
          <xsl:if test="c:cell(., 'StudyTime') != ''">
            <value number="1"><xsl:value-of select="$study-time"/></value>
          </xsl:if>
        </StudyTime>
        <ContentTime element="0033" group="0008" vr="TM">
          <value number="1"><xsl:value-of select="format-dateTime($saved, '[H01][m01][s01]')"/></value>
        </ContentTime>
        <AccessionNumber element="0050" group="0008" vr="SH"/>
        <Modality element="0060" group="0008" vr="CS"><value number="1">SR</value></Modality>
        <Manufacturer element="0070" group="0008" vr="LO"/>
        <ReferringPhysicianName element="0090" group="0008" vr="PN"/>
        <ReferencedPerformedProcedureStepSequence element="1111" group="0008" vr="SQ"/>
        <PatientName element="0010" group="0010" vr="PN">
          <value number="1"><xsl:value-of select="c:cell(., 'patientID')"/></value>
        </PatientName>
        <PatientID element="0020" group="0010" vr="LO">
          <value number="1"><xsl:value-of select="c:cell(., 'patientID')"/></value>
        </PatientID>
        <PatientBirthDate element="0030" group="0010" vr="DA"/>
        <PatientSex element="0040" group="0010" vr="CS"/>
        <StudyInstanceUID element="000d" group="0020" vr="UI">
          <value number="1"><xsl:value-of select="c:cell(., 'StudyInstanceUID')"/></value>
        </StudyInstanceUID>
        <SeriesInstanceUID element="000e" group="0020" vr="UI">
          <value number="1"><xsl:value-of select="c:uid($order, 'series_instance_uid')"/></value>
        </SeriesInstanceUID>
        <StudyID element="0010" group="0020" vr="SH"/>
        <SeriesNumber element="0011" group="0020" vr="IS"><value number="1">4578</value>
        </SeriesNumber>
        <InstanceNumber element="0013" group="0020" vr="IS">
          <value number="1"><xsl:value-of select="$order"/></value>
        </InstanceNumber>
        <PerformedProcedureCodeSequence element="a372" group="0040" vr="SQ"/>
        <CurrentRequestedProcedureEvidenceSequence element="a375" group="0040" vr="SQ">
          <Item number="1">
            <ReferencedSeriesSequence element="1115" group="0008" vr="SQ">
              <Item number="1">
                <ReferencedSOPSequence element="1199" group="0008" vr="SQ">
                  <Item number="1">
                    <ReferencedSOPClassUID element="1150" group="0008" vr="UI">
                      <value number="1"><xsl:value-of select="$sop-class"/></value>
                    </ReferencedSOPClassUID>
                    <ReferencedSOPInstanceUID element="1155" group="0008" vr="UI">
                      <value number="1"><xsl:value-of select="$instance"/></value>
                    </ReferencedSOPInstanceUID>
                  </Item>
                </ReferencedSOPSequence>
                <SeriesInstanceUID element="000e" group="0020" vr="UI">
                  <value number="1"><xsl:value-of select="c:cell(., 'seriesUID')"/></value>
                </SeriesInstanceUID>
              </Item>
            </ReferencedSeriesSequence>
            <StudyInstanceUID element="000d" group="0020" vr="UI">
              <value number="1"><xsl:value-of select="c:cell(., 'StudyInstanceUID')"/></value>
            </StudyInstanceUID>
          </Item>
        </CurrentRequestedProcedureEvidenceSequence>
        <CompletionFlag element="a491" group="0040" vr="CS">
          <value number="1">COMPLETE</value>
        </CompletionFlag>
        <VerificationFlag element="a493" group="0040" vr="CS">
          <value number="1">UNVERIFIED</value>
        </VerificationFlag>
      </DicomStructuredReportHeader>
      <DicomStructuredReportContent>
        <container continuity="CONTINUOUS" template="1500" templatemappingresource="DCMR">
          <xsl:call-template name="concept"><xsl:with-param name="name" select="'TITLE'"/>
          </xsl:call-template>
          <xsl:call-template name="coded-item">
            <xsl:with-param name="relationship" select="'HAS CONCEPT MOD'"/>
            <xsl:with-param name="concept" select="'LANGUAGE'"/>
            <xsl:with-param name="value" select="'ENGLISH_US'"/>
          </xsl:call-template>
          <xsl:call-template name="coded-item">
            <xsl:with-param name="relationship" select="'HAS OBS CONTEXT'"/>
            <xsl:with-param name="concept" select="'OBSERVER_TYPE'"/>
            <xsl:with-param name="value" select="'PERSON'"/>
          </xsl:call-template>
          <pname relationship="HAS OBS CONTEXT">
            <xsl:call-template name="concept">
              <xsl:with-param name="name" select="'PERSON_OBSERVER_NAME'"/>
            </xsl:call-template>
            <value><xsl:value-of select="concat(c:cell(., 'annotator'), '^')"/></value>
          </pname>
          <text relationship="HAS OBS CONTEXT">
            <xsl:call-template name="concept">
              <xsl:with-param name="name" select="'PERSON_OBSERVER_LOGIN_NAME'"/>
            </xsl:call-template>
            <value><xsl:value-of select="c:cell(., 'annotator')"/></value>
          </text>
          <xsl:if test="c:cell(., 'radiologist_status') = 'radiologist'">
            <xsl:call-template name="coded-item">
              <xsl:with-param name="relationship" select="'HAS OBS CONTEXT'"/>
              <xsl:with-param name="concept" select="'PERSON_OBSERVER_ROLE'"/>
              <xsl:with-param name="value" select="'RADIOLOGIST'"/>
            </xsl:call-template>
          </xsl:if>
          <xsl:call-template name="coded-item">
            <xsl:with-param name="relationship" select="'HAS CONCEPT MOD'"/>
            <xsl:with-param name="concept" select="'PROCEDURE_REPORTED'"/>
            <xsl:with-param name="value" select="'CT_UNSPECIFIED'"/>
          </xsl:call-template>
          <container continuity="CONTINUOUS" relationship="CONTAINS">
            <xsl:call-template name="concept">
              <xsl:with-param name="name" select="'IMAGE_LIBRARY'"/>
            </xsl:call-template>
            <container continuity="CONTINUOUS" relationship="CONTAINS">
              <xsl:call-template name="concept">
                <xsl:with-param name="name" select="'IMAGE_LIBRARY_GROUP'"/>
              </xsl:call-template>
              <image relationship="CONTAINS">
                <class><xsl:value-of select="$sop-class"/></class>
                <instance><xsl:value-of select="$instance"/></instance>
                <xsl:call-template name="coded-item">
                  <xsl:with-param name="relationship" select="'HAS ACQ CONTEXT'"/>
                  <xsl:with-param name="concept" select="'MODALITY'"/>
                  <xsl:with-param name="value" select="'CT'"/>
                </xsl:call-template>
                <date relationship="HAS ACQ CONTEXT">
                  <xsl:call-template name="concept">
                    <xsl:with-param name="name" select="'STUDY_DATE'"/>
                  </xsl:call-template>
                  <value><xsl:value-of select="c:cell(., 'StudyDate')"/></value>
                </date>
                <xsl:if test="c:cell(., 'StudyTime') != ''">
                  <time relationship="HAS ACQ CONTEXT">
                    <xsl:call-template name="concept">
                      <xsl:with-param name="name" select="'STUDY_TIME'"/>
                    </xsl:call-template>
                    <value><xsl:value-of select="$study-time"/></value>
                  </time>
                </xsl:if>
              </image>
            </container>
          </container>
          <container continuity="CONTINUOUS" relationship="CONTAINS">
            <xsl:call-template name="concept">
              <xsl:with-param name="name" select="'IMAGING_MEASUREMENTS'"/>
            </xsl:call-template>
            <container continuity="CONTINUOUS" relationship="CONTAINS" template="1501"
                templatemappingresource="DCMR">
              <xsl:call-template name="concept">
                <xsl:with-param name="name" select="'MEASUREMENT_GROUP'"/>
              </xsl:call-template>
              <text relationship="HAS OBS CONTEXT">
                <xsl:call-template name="concept">
                  <xsl:with-param name="name" select="'TRACKING_IDENTIFIER'"/>
                </xsl:call-template>
                <value><xsl:value-of select="c:cell(., '_id')"/></value>
              </text>
              <uidref relationship="HAS OBS CONTEXT">
                <xsl:call-template name="concept">
                  <xsl:with-param name="name" select="'TRACKING_UID'"/>
                </xsl:call-template>
                <value><xsl:value-of select="c:uid($order, 'tracking_uid')"/></value>
              </uidref>
              <xsl:call-template name="coded-item">
                <xsl:with-param name="relationship" select="'CONTAINS'"/>
                <xsl:with-param name="concept" select="'FINDING'"/>
                <xsl:with-param name="value" select="'NEOPLASM'"/>
              </xsl:call-template>
              <xsl:call-template name="coded-item">
                <xsl:with-param name="relationship" select="'HAS CONCEPT MOD'"/>
                <xsl:with-param name="concept" select="'FINDING_SITE'"/>
                <xsl:with-param name="value"
                    select="string($code-list/anatomy[@cell = c:cell(current(), 'anatomy')]/@organ)"/>
              </xsl:call-template>
              <num relationship="CONTAINS">
                <xsl:call-template name="concept">
                  <xsl:with-param name="name" select="'LENGTH'"/>
                </xsl:call-template>
                <value><xsl:value-of select="c:cell(., 'length')"/></value>
                <xsl:call-template name="code">
                  <xsl:with-param name="element" select="'units'"/>
                  <xsl:with-param name="name" select="'MILLIMETER'"/>
                </xsl:call-template>
                <scoord relationship="INFERRED FROM">
                  <polyline>
                    <x><xsl:value-of select="c:cell(., 'start_x')"/></x>
                    <y><xsl:value-of select="c:cell(., 'start_y')"/></y>
                    <x><xsl:value-of select="c:cell(., 'end_x')"/></x>
                    <y><xsl:value-of select="c:cell(., 'end_y')"/></y>
                  </polyline>
                  <image relationship="SELECTED FROM">
                    <class><xsl:value-of select="$sop-class"/></class>
                    <instance><xsl:value-of select="$instance"/></instance>
                  </image>
                </scoord>
              </num>
            </container>
          </container>
        </container>
      </DicomStructuredReportContent>
    </DicomStructuredReport>
  </xsl:template>
</xsl:stylesheet>
